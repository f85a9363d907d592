"""The installed plugin is found through its entry point and serves inside ``marathon``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from marathon_core.plugins import get_plugin_host
from marathon_core.testing.processes import running_marathon


def test_entry_point_is_discovered() -> None:
    infos = {info.name: info for info in get_plugin_host().plugins()}
    assert infos["rest"].distribution == "marathon-rest"
    assert infos["rest"].hooks == ("marathon_addhooks", "marathon_addoption", "marathon_services")


@pytest.mark.processes
def test_marathon_serves_the_api(tmp_path: Path) -> None:
    with running_marathon("--master", "http://127.0.0.1:5050", state_dir=tmp_path) as server:
        assert httpx.get(f"{server.url}/ping", timeout=10).text == "pong"
        assert server.stop(timeout=5) == 0


@pytest.mark.processes
def test_the_leader_is_announced_with_the_bound_port(tmp_path: Path) -> None:
    with running_marathon("--master", "http://127.0.0.1:5050", state_dir=tmp_path) as server:
        port = server.url.rsplit(":", 1)[1]
        leader = httpx.get(f"{server.url}/v2/leader", timeout=10).json()["leader"]
        assert leader.endswith(f":{port}") and port != "0"
        assert server.stop(timeout=5) == 0
    assert any(f"{leader} is now the leader" in line for line in server.log)
