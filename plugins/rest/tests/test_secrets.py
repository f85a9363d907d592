"""Secrets stay out of ``/v2/info`` and out of the server's log."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from marathon_core.testing.processes import running_marathon, wait_for

ZK = "zk://marathon:zk-s3cret@127.0.0.1:2181/marathon"
MASTER = "http://ops:mesos-s3cret@127.0.0.1:1"


@pytest.mark.parametrize("api_args", [["--zk", ZK, "--master", MASTER]])
async def test_info_masks_passwords_in_urls(client: httpx.AsyncClient) -> None:
    info = await client.get("/v2/info")
    assert info.status_code == 200
    assert "s3cret" not in info.text
    body = info.json()
    assert body["zookeeper_config"]["zk"] == "zk://marathon:***@127.0.0.1:2181/marathon"
    assert body["marathon_config"]["master"] == "http://ops:***@127.0.0.1:1"


@pytest.mark.processes
def test_the_log_never_shows_the_master_password(tmp_path: Path) -> None:
    with running_marathon("--master", MASTER, state_dir=tmp_path) as marathon:
        wait_for(
            lambda: any("Mesos subscription to" in line for line in marathon.log),
            what="a failed Mesos subscription in the log",
        )
        info = httpx.get(f"{marathon.url}/v2/info", timeout=10).text
    log = "".join(marathon.log)
    assert "http://ops:***@127.0.0.1:1" in log
    assert "mesos-s3cret" not in log
    assert "mesos-s3cret" not in info
