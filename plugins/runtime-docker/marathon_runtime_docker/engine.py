"""A small Docker Engine API client over the daemon's unix socket.

httpx over a unix-domain socket rather than the ``docker`` SDK: httpx is already a
dependency of marathon-core, it is async and runs under trio (through anyio), so a
container's ``wait`` and its log stream are plain awaits that a kill can cancel. The
SDK is synchronous (every call would need a worker thread, and a blocked ``wait``
cannot be cancelled), pulls in ``requests`` and ``websocket-client``, and its
conveniences (``containers.run``) hide the engine's error texts that a failed task
has to report. The handful of endpoints used here are stable since API 1.25; the
client speaks 1.41 (Docker 20.10, the Debian ``docker.io`` of these machines) unless
told otherwise.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

__all__ = ["API_VERSION", "DockerEngine", "EngineError", "demultiplex"]

API_VERSION = "v1.41"
#: Timeout of the short calls (inspect, create, start, list); waits and log streams have none.
CALL_TIMEOUT = 30.0
STDOUT, STDERR = 1, 2


class EngineError(Exception):
    """The engine refused a call: its HTTP status and its own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = str(response.json().get("message", response.text))
    except ValueError:
        message = response.text.strip() or response.reason_phrase
    raise EngineError(response.status_code, message)


def demultiplex(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete frames of a non-TTY log stream off the front of ``buffer``.

    Each frame is an 8-byte header (byte 0: 1 stdout, 2 stderr; bytes 4-7: big-endian
    length) and its payload; an incomplete frame stays in the buffer for the next chunk.
    """
    frames = []
    while len(buffer) >= 8:
        size = int.from_bytes(buffer[4:8], "big")
        if len(buffer) < 8 + size:
            break
        frames.append((buffer[0], bytes(buffer[8 : 8 + size])))
        del buffer[: 8 + size]
    return frames


class DockerEngine:
    """The calls a containerizer needs, each raising :class:`EngineError` on refusal.

    The HTTP client is made at the first call, inside the caller's event loop.
    """

    def __init__(self, socket: str, *, api_version: str = API_VERSION) -> None:
        self.socket = socket
        self.api_version = api_version
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self.socket),
                base_url=f"http://docker/{self.api_version}",
                timeout=CALL_TIMEOUT,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        timeout: float | None = CALL_TIMEOUT,
    ) -> httpx.Response:
        try:
            response = await self.client.request(
                method, path, params=params, json=body, timeout=timeout
            )
        except httpx.TransportError as exc:
            raise EngineError(0, f"Docker Engine at {self.socket} unreachable: {exc}") from exc
        _raise_for(response)
        return response

    async def ping(self) -> None:
        await self._call("GET", "/_ping")

    async def image_present(self, image: str) -> bool:
        try:
            await self._call("GET", f"/images/{image}/json")
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def pull(self, image: str) -> None:
        """Pull ``image`` (``name[:tag]``, ``name@digest``); an error in the progress
        stream counts as much as an error status."""
        name, tag = _split_reference(image)
        params = {"fromImage": name, "tag": tag} if tag else {"fromImage": name}
        try:
            async with self.client.stream(
                "POST", "/images/create", params=params, timeout=None
            ) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        progress = json.loads(line)
                    except ValueError:
                        continue
                    if "error" in progress:
                        raise EngineError(500, str(progress["error"]))
        except httpx.TransportError as exc:
            raise EngineError(0, f"Docker Engine at {self.socket} unreachable: {exc}") from exc

    async def create(self, name: str, config: Mapping[str, Any]) -> str:
        response = await self._call(
            "POST", "/containers/create", params={"name": name}, body=config
        )
        return str(response.json()["Id"])

    async def start(self, container: str) -> None:
        await self._call("POST", f"/containers/{container}/start")

    async def wait(self, container: str) -> int:
        """Block until the container is not running; its exit code."""
        response = await self._call(
            "POST",
            f"/containers/{container}/wait",
            params={"condition": "not-running"},
            timeout=None,
        )
        return int(response.json().get("StatusCode", -1))

    async def inspect(self, container: str) -> dict[str, Any] | None:
        try:
            response = await self._call("GET", f"/containers/{container}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = response.json()
        return found

    async def stop(self, container: str, *, timeout: int) -> None:
        """The image's stop signal (SIGTERM), SIGKILL after ``timeout`` seconds."""
        try:
            await self._call(
                "POST", f"/containers/{container}/stop", params={"t": timeout}, timeout=None
            )
        except EngineError as exc:
            if exc.status not in (304, 404):  # already stopped, or gone
                raise

    async def remove(self, container: str) -> None:
        """Remove the container (killed if it still runs) and its anonymous volumes."""
        try:
            await self._call("DELETE", f"/containers/{container}", params={"force": 1, "v": 1})
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container, running or not, that carries all of ``labels``."""
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        response = await self._call(
            "GET", "/containers/json", params={"all": 1, "filters": json.dumps(filters)}
        )
        found: list[dict[str, Any]] = response.json()
        return found

    async def exec_create(self, container: str, command: list[str]) -> str:
        """An exec instance of ``command`` in the running container (its output attached)."""
        body = {"Cmd": command, "AttachStdout": True, "AttachStderr": True}
        response = await self._call("POST", f"/containers/{container}/exec", body=body)
        return str(response.json()["Id"])

    def exec_run(self, exec_id: str) -> AsyncIterator[tuple[int, bytes]]:
        """Start an exec instance and follow its output until the command ends."""
        return self._frames(
            "POST", f"/exec/{exec_id}/start", f"exec {exec_id}", json={"Detach": False}
        )

    async def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        """``Running``, ``ExitCode`` and ``Pid`` (in the host's PID namespace) of an exec."""
        response = await self._call("GET", f"/exec/{exec_id}/json")
        found: dict[str, Any] = response.json()
        return found

    def logs(self, container: str) -> AsyncIterator[tuple[int, bytes]]:
        """The container's output from its start, following it until it stops: (stream, data)."""
        params = {"stdout": 1, "stderr": 1, "follow": 1}
        return self._frames(
            "GET", f"/containers/{container}/logs", f"log stream of {container}", params=params
        )

    async def _frames(
        self, method: str, path: str, what: str, **request: Any
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Follow a multiplexed output stream (logs, exec) frame by frame: (stream, data)."""
        buffer = bytearray()
        try:
            async with self.client.stream(method, path, timeout=None, **request) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_for(response)
                async for chunk in response.aiter_bytes():
                    buffer += chunk
                    for frame in demultiplex(buffer):
                        yield frame
        except httpx.TransportError as exc:
            raise EngineError(0, f"{what} broken: {exc}") from exc


def _split_reference(image: str) -> tuple[str, str | None]:
    """``repo[:tag]`` or ``repo@digest`` as the pull endpoint takes it (a registry's
    ``host:port/`` is not a tag)."""
    if "@" in image:
        return image, None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"
