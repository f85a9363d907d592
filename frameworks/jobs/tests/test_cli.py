"""Chronos's flag names, and the environment as a second source."""

from __future__ import annotations

import pytest

from marathon_jobs.cli import parse_args


def test_chronos_flags() -> None:
    args = parse_args(
        ["--master", "zk://zk1:2181/mesos", "--zk_hosts", "zk1:2181,zk2:2181", "--zk_path",
         "/chronos/state", "--http_port", "4400", "--hostname", "jobs1",
         "--mesos_framework_name", "chronos-prod", "--failover_timeout", "3600",
         "--mesos_role", "batch", "--task_epsilon", "90"]
    )  # fmt: skip
    assert (args.master, args.zk_hosts, args.zk_path) == (
        "zk://zk1:2181/mesos", "zk1:2181,zk2:2181", "/chronos/state",
    )  # fmt: skip
    assert (args.http_port, args.hostname, args.mesos_framework_name) == (
        4400, "jobs1", "chronos-prod",
    )  # fmt: skip
    assert (args.failover_timeout, args.mesos_role, args.task_epsilon) == (3600.0, "batch", 90)


def test_the_environment_gives_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARATHON_JOBS_HTTP_PORT", "4401")
    monkeypatch.setenv("MARATHON_JOBS_MASTER", "m1:5050")
    args = parse_args([])
    assert (args.http_port, args.master, args.zk_hosts) == (4401, "m1:5050", None)
    assert parse_args(["--http_port", "1"]).http_port == 1
