"""Marathon's HTTP API with leader following: a master that does not answer is skipped.

Every master proxies API calls to the leader (a standby forwards them), so any
master that answers will do; we stay with the one that answered last. A 503 (no
leader known there yet) also moves on to the next master.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from marathon_ctl.config import Settings
from marathon_ctl.errors import ApiError, ConnectionFailed

#: Query parameters as httpx takes them: a list repeats its key, a bool is true/false.
Params = Mapping[str, str | int | float | bool | Sequence[str]]

#: Failures after which the next master is tried.
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
#: An event stream that breaks is resumed (from the last event id) after these.
_STREAM_BROKEN = (*_UNREACHABLE, httpx.ReadError, httpx.ReadTimeout)
#: How often a broken event stream is reopened before giving up.
STREAM_RETRIES = 20


def auth_headers(settings: Settings) -> dict[str, str]:
    if settings.token:
        return {"Authorization": f"Bearer {settings.token}"}
    if settings.user:
        encoded = base64.b64encode(settings.user.encode()).decode()
        return {"Authorization": f"Basic {encoded}"}
    return {}


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except json.JSONDecodeError:
        return response.text


class Marathon:
    """A synchronous client of ``/v2``: plain JSON in, plain JSON out."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.urls = settings.urls
        self._current = 0
        self._http = httpx.Client(
            headers={"Accept": "application/json", **auth_headers(settings)},
            timeout=timeout,
            follow_redirects=True,
        )

    @property
    def url(self) -> str:
        """The master that answered last."""
        return self.urls[self._current]

    def close(self) -> None:
        self._http.close()

    def _order(self) -> list[int]:
        n = len(self.urls)
        return [(self._current + i) % n for i in range(n)]

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> Any:
        """The answer's JSON (None if empty); :class:`ApiError` for 4xx and 5xx."""
        failures: list[str] = []
        last: httpx.Response | None = None
        for index in self._order():
            try:
                response = self._http.request(
                    method, self.urls[index] + path, params=params, json=body
                )
            except _UNREACHABLE as exc:
                failures.append(f"{self.urls[index]}: {exc or type(exc).__name__}")
                continue
            self._current = index
            if response.status_code == 503 and len(self.urls) > 1:
                last = response
                continue
            last = response
            break
        if last is None:
            raise ConnectionFailed("no Marathon answered: " + "; ".join(failures))
        if last.status_code >= 400:
            raise ApiError(last.status_code, _body(last), method, path)
        return _body(last)

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` with ``params`` (those that are None left out)."""
        query = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=query)

    def find(self, path: str, **params: Any) -> Any:
        """Like :meth:`get`, but None where there is nothing (404)."""
        try:
            return self.get(path, **params)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None

    def app(self, app_id: str) -> dict[str, Any] | None:
        """The app with its tasks, None if there is no such app."""
        found = self.find(f"/v2/apps{app_id}")
        return None if found is None else dict(found["app"])

    def events(
        self, event_types: Sequence[str] = (), *, last_event_id: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``/v2/events`` as (event type, payload), resumed from the last id when the
        stream breaks (a leader change), on whichever master answers."""
        from httpx_sse import connect_sse

        params: Params = {"event_type": list(event_types)}
        retries = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            index = self._order()[retries % len(self.urls)]
            url = self.urls[index] + "/v2/events"
            try:
                with connect_sse(
                    self._http,
                    "GET",
                    url,
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=None),
                ) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise ApiError(
                            source.response.status_code, _body(source.response), "GET", "/v2/events"
                        )
                    self._current = index
                    retries = 0
                    for sse in source.iter_sse():
                        if sse.id:
                            last_event_id = sse.id
                        if sse.data:
                            yield sse.event, json.loads(sse.data)
            except _STREAM_BROKEN as exc:
                retries += 1
                if retries > STREAM_RETRIES:
                    raise ConnectionFailed(f"event stream lost: {exc}") from None
                time.sleep(min(0.2 * retries, 2.0))
                continue
            retries += 1  # the server ended the stream: reopen it
