"""Exit codes scripts can trust, and the errors that carry them."""

from __future__ import annotations

from typing import Any

#: Success.
OK = 0
#: A usage error or an error answered by the API.
USAGE_OR_API = 1
#: The deployment failed or was rolled back.
DEPLOYMENT_FAILED = 2
#: ``--timeout`` reached; the deployment keeps running.
TIMED_OUT = 3
#: Interrupted (Ctrl-C); the deployment keeps running.
INTERRUPTED = 130


class CtlError(Exception):
    """An error that ends the command with ``exit_code`` after printing its message."""

    exit_code = USAGE_OR_API


class ConnectionFailed(CtlError):
    """No master answered."""


class ApiError(CtlError):
    """Marathon answered with an error: its message and field details, as given."""

    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        self.method = method
        self.path = path
        super().__init__(self.render())

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return str(self.body).strip() or f"HTTP {self.status}"

    @property
    def details(self) -> list[tuple[str, list[str]]]:
        """``details[].path`` with its ``errors``, as Marathon returns them."""
        raw = self.body.get("details") if isinstance(self.body, dict) else None
        out: list[tuple[str, list[str]]] = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict):
                errors = item.get("errors") or []
                out.append((str(item.get("path", "")), [str(e) for e in errors]))
        return out

    def render(self) -> str:
        lines = [f"{self.method} {self.path}: {self.status} {self.message}"]
        for path, errors in self.details:
            lines.extend(f"  {path}: {error}" for error in errors or [""])
        if isinstance(self.body, dict) and self.body.get("deployments"):
            ids = ", ".join(str(d.get("id")) for d in self.body["deployments"])
            lines.append(f"  deployments in the way: {ids} (--force cancels them)")
        return "\n".join(lines)
