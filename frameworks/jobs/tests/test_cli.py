"""Chronos's flag names, and the environment as a second source."""

from __future__ import annotations

import pytest
import trio

from marathon_core.errors import FencedWriteError
from marathon_core.framework import SoloElection, SubscriptionError
from marathon_jobs import cli
from marathon_jobs.cli import parse_args, step_down_on_loss


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


async def test_a_lost_leadership_steps_down_and_leads_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fenced write or "Framework failed over" ends the term, not the process: the
    election steps down, and this process leads again in a later term."""
    monkeypatch.setattr(cli, "STEP_DOWN_PAUSE", 0.01)
    election = SoloElection("me:1")
    terms: list[str] = []
    failures = [
        FencedWriteError("me:1 is not the leader"),
        SubscriptionError("Mesos ended the subscription: Framework failed over"),
    ]

    async def fail() -> None:
        raise failures.pop(0)

    async def term() -> None:
        terms.append("term")
        if failures:  # from inside nurseries, as the scheduler's tasks raise them
            async with trio.open_nursery() as outer, trio.open_nursery() as inner:
                inner.start_soon(fail)
                outer.start_soon(trio.sleep_forever)
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(election.run, step_down_on_loss, term)
            while len(terms) < 3:
                await trio.sleep(0.05)
            assert election.is_leader
            nursery.cancel_scope.cancel()
    assert terms == ["term"] * 3


async def test_another_refusal_from_mesos_still_ends_the_process() -> None:
    async def term() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(removed)

    async def removed() -> None:
        raise SubscriptionError("Mesos ended the subscription: Framework has been removed")

    with pytest.raises(ExceptionGroup) as raised:
        await step_down_on_loss(term)
    assert raised.group_contains(SubscriptionError)
