"""The installed plugin is found through its entry point and serves inside ``marathon``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from marathon_core.plugins import get_plugin_host


def test_entry_point_is_discovered() -> None:
    infos = {info.name: info for info in get_plugin_host().plugins()}
    assert infos["rest"].distribution == "marathon-rest"
    assert infos["rest"].hooks == ("marathon_addoption", "marathon_services")


def test_marathon_serves_the_api(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marathon_core.cli",
            "--master",
            "http://127.0.0.1:5050",
            "--http_port",
            "0",
            "--http_address",
            "127.0.0.1",
            "--state_dir",
            str(tmp_path),
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            if match := re.search(r"REST API listening on (http://\S+)", line):
                url = match.group(1)
                break
        assert url is not None, f"marathon exited with {proc.wait()}"
        assert httpx.get(f"{url}/ping", timeout=10).text == "pong"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
