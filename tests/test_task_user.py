"""Who runs tasks whose app names no user: never root on the embedded cluster by default."""

from __future__ import annotations

import getpass

import pytest

from marathon_core.config import parse_config
from marathon_core.mesos import calls
from marathon_core.scheduler.scheduler import SchedulerOptions


@pytest.mark.parametrize(
    ("args", "euid", "task_user", "framework_user"),
    [
        (["--master", "local"], 0, "nobody", "nobody"),
        (["--master", "local", "--mesos_user", "root"], 0, "root", "root"),
        (["--master", "local", "--mesos_user", "web"], 0, "web", "web"),
        (["--master", "local"], 1000, None, getpass.getuser()),
        (["--master", "http://127.0.0.1:5050"], 0, None, getpass.getuser()),
    ],
)
def test_the_default_task_user(
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    euid: int,
    task_user: str | None,
    framework_user: str,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: euid)
    config = parse_config(args, environ={})
    assert calls.default_task_user(config) == task_user
    assert SchedulerOptions.from_config(config).mesos_user == task_user  # CommandInfo.user
    assert calls.framework_info(config)["user"] == framework_user
