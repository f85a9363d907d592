"""Two ``marathon`` processes on one real ZooKeeper: the standby forwards to the leader,
and takes over when the leader dies."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from marathon_core.testing.processes import running_marathon, wait_for


def test_standby_forwards_detects_loops_and_takes_over(zk_url: str, tmp_path: Path) -> None:
    # Loopback names only: the leader's announced address is where the standby connects.
    args = (
        "--master",
        "http://127.0.0.1:1",
        "--hostname",
        "127.0.0.1",
        "--zk",
        zk_url,
        "--zk_session_timeout",
        "2000",
    )
    with (
        running_marathon(*args, state_dir=tmp_path / "a") as a,
        running_marathon(*args, state_dir=tmp_path / "b") as b,
    ):
        leader = wait_for(lambda: a.leader() and a.leader() == b.leader(), what="a leader")
        leader = a.leader()
        first, second = (a, b) if a.url.endswith(leader.split(":")[1]) else (b, a)
        assert first.url == f"http://{leader}"

        created = httpx.post(
            f"{second.url}/v2/apps", json={"id": "/ha/web", "cmd": "sleep 1"}, timeout=10
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-marathon-leader"] == f"http://{leader}"
        assert httpx.get(f"{first.url}/v2/apps/ha/web", timeout=5).status_code == 200
        assert httpx.get(f"{second.url}/v2/apps/ha/web", timeout=5).status_code == 200
        assert httpx.get(f"{second.url}/ping", timeout=5).text == "pong"  # answered locally

        with httpx.stream(
            "GET", f"{second.url}/v2/events?event_type=api_post_event", timeout=10
        ) as events:
            lines = events.iter_lines()
            httpx.put(f"{second.url}/v2/apps/ha/web?force=true", json={"instances": 2}, timeout=10)
            data = next(line for line in lines if line.startswith("data: "))
            assert json.loads(data[6:])["appDefinition"]["instances"] == 2

        own = second.url.removeprefix("http://")
        looped = httpx.get(
            f"{second.url}/v2/apps", headers={"X-Marathon-Via": f"1.1 {own}"}, timeout=5
        )
        assert looped.status_code == 502 and "loop" in looped.json()["message"]

        first.process.send_signal(signal.SIGKILL)
        wait_for(lambda: second.leader() == own, timeout=30, what="the standby to lead")
        app = httpx.get(f"{second.url}/v2/apps/ha/web", timeout=5).json()["app"]
        assert app["instances"] == 2  # nothing written through the old leader was lost
        assert second.stop() == 0
