"""Pure scheduler logic: backoff, ports, offer matching, TaskInfo and env vars, queue."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

from marathon_core.config import parse_config
from marathon_core.contracts.placement import NoOfferMatchReason as R
from marathon_core.contracts.placement import Placed
from marathon_core.mesos.events import Offer, decode_offer
from marathon_core.model.app import PortDefinition
from marathon_core.model.ids import Timestamp
from marathon_core.model.instance import Condition
from marathon_core.scheduler.backoff import DELAY_WORTHY, LaunchDelays
from marathon_core.scheduler.offer_stats import OfferStats
from marathon_core.scheduler.offers import Match, OfferPool, Rejection, assign_ports, match
from marathon_core.scheduler.scheduler import SchedulerOptions
from marathon_core.scheduler.taskinfo import build_task_info, task_env

from .scheduler_helpers import make_app  # type: ignore[import-not-found]


def offer(
    *,
    host: str = "a1",
    cpus: float = 1.0,
    mem: float = 512.0,
    ports: tuple[tuple[int, int], ...] = ((31000, 31009),),
    role: str = "*",
    attributes: dict[str, str] | None = None,
) -> Offer:
    """An offer as Mesos sends it, decoded as the client does."""

    def res(name: str, body: dict[str, Any], kind: str = "SCALAR") -> dict[str, Any]:
        return {"name": name, "type": kind, **body, "role": "*", "allocation_info": {"role": role}}

    return decode_offer(
        {
            "id": {"value": f"O-{host}"},
            "agent_id": {"value": f"S-{host}"},
            "hostname": host,
            "allocation_info": {"role": role},
            "resources": [
                res("cpus", {"scalar": {"value": cpus}}),
                res("mem", {"scalar": {"value": mem}}),
                res(
                    "ports",
                    {"ranges": {"range": [{"begin": b, "end": e} for b, e in ports]}},
                    "RANGES",
                ),
            ],
            "attributes": [
                {"name": k, "type": "TEXT", "text": {"value": v}}
                for k, v in (attributes or {}).items()
            ],
        }
    )


# -- backoff ------------------------------------------------------------------------------


def test_backoff_grows_by_factor_up_to_the_cap_and_resets() -> None:
    app = make_app(backoff_seconds=1, backoff_factor=2.0, max_launch_delay_seconds=5)
    delays = LaunchDelays()
    assert delays.launch_allowed_at(app, 100.0) == 100.0
    seen = [delays.add(app, 100.0).delay for _ in range(5)]
    assert seen == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert delays.time_left(app, 101.0) == pytest.approx(4.0)
    delays.advance(app, 103.0)  # a task started: re-anchored, same delay
    assert delays.launch_allowed_at(app, 103.0) == pytest.approx(108.0)
    assert delays.reset(app.id) and delays.time_left(app, 103.0) == 0.0


def test_backoff_marathon_defaults_and_new_config_starts_fresh() -> None:
    app = make_app()
    delays = LaunchDelays()
    assert [round(delays.add(app, 0.0).delay, 4) for _ in range(3)] == [1.0, 1.15, 1.3225]
    changed = attrs.evolve(app, cmd="other", version=Timestamp(app.version.millis + 1))
    assert delays.get(changed, 0.0) is None
    assert Condition.KILLED not in DELAY_WORTHY and Condition.FAILED in DELAY_WORTHY


def test_overdue_delay_is_dropped() -> None:
    app = make_app(backoff_seconds=1, max_launch_delay_seconds=10)
    delays = LaunchDelays()
    delays.add(app, 0.0)
    assert delays.get(app, 5.0) is not None
    assert delays.get(app, 11.0) is None


# -- ports --------------------------------------------------------------------------------


def test_assign_ports_random_exact_and_too_few() -> None:
    rng = random.Random(7)
    ports = assign_ports([0, 0, 0], [(31000, 31001), (31005, 31005)], rng)
    assert ports is not None and sorted(ports) == [31000, 31001, 31005]
    assert assign_ports([31005, 0], [(31000, 31001), (31005, 31005)], rng) is not None
    assert assign_ports([0, 0, 0, 0], [(31000, 31001), (31005, 31005)], rng) is None
    assert assign_ports([80], [(31000, 32000)], rng) is None
    assert assign_ports([31001, 31001], [(31000, 32000)], rng) is None
    spread = {assign_ports([0], [(31000, 32000)], rng)[0] for _ in range(20)}  # type: ignore[index]
    assert len(spread) > 10  # random, not always the first port


# -- matching -----------------------------------------------------------------------------


def test_match_reports_every_reason_and_the_shortfall() -> None:
    app = make_app(cpus=2.0, mem=1024.0, ports=11, role="*")
    result = match(app, OfferPool(offer(cpus=1.5)), {}, {}, random.Random(0))
    assert isinstance(result, Rejection)
    assert result.reasons == {R.INSUFFICIENT_CPUS, R.INSUFFICIENT_MEMORY, R.INSUFFICIENT_PORTS}
    assert result.shortfalls["cpus"] == (2.0, 1.5)
    role = match(make_app(role="web"), OfferPool(offer()), {}, {}, random.Random(0))
    assert isinstance(role, Rejection) and role.reasons == {R.UNFULFILLED_ROLE}


def test_several_instances_per_offer_consume_resources_and_ports() -> None:
    app = make_app(cpus=0.4, mem=100.0, ports=2)
    pool = OfferPool(offer(cpus=1.0))
    taken: list[int] = []
    for _ in range(2):
        result = match(app, pool, {}, {}, random.Random(1))
        assert isinstance(result, Match)
        pool.take(result)
        taken += result.host_ports
    assert len(set(taken)) == 4
    third = match(app, pool, {}, {}, random.Random(1))
    assert isinstance(third, Rejection) and third.reasons == {R.INSUFFICIENT_CPUS}
    assert pool.scalar("cpus") == pytest.approx(0.2)


def test_require_ports_needs_the_exact_numbers() -> None:
    app = make_app(port_definitions=(PortDefinition(port=31005),), require_ports=True)
    assert isinstance(match(app, OfferPool(offer()), {}, {}, random.Random()), Match)
    other = OfferPool(offer(ports=((32000, 32010),)))
    assert isinstance(match(app, other, {}, {}, random.Random()), Rejection)


def test_constraints_through_the_operators(constraint_operators: dict[str, Any]) -> None:
    app = make_app(instances=2, constraints=(("hostname", "UNIQUE"),))
    placed = {"hostname": Placed.of(["a1"], instances=2)}
    rejected = match(
        app, OfferPool(offer(host="a1")), placed, constraint_operators, random.Random()
    )
    assert isinstance(rejected, Rejection) and rejected.reasons == {R.UNFULFILLED_CONSTRAINT}
    ok = match(app, OfferPool(offer(host="a2")), placed, constraint_operators, random.Random())
    assert isinstance(ok, Match)
    unknown = make_app(constraints=(("rack", "NOPE"),))
    result = match(unknown, OfferPool(offer()), {}, constraint_operators, random.Random())
    assert isinstance(result, Rejection) and "NOPE" in result.details[0]


def test_offer_stats_funnel_and_near_miss() -> None:
    stats = OfferStats()
    stats.rejected(frozenset({R.INSUFFICIENT_CPUS}), ("x",), {"cpus": (2.0, 1.0)}, "h1")
    stats.rejected(
        frozenset({R.UNFULFILLED_CONSTRAINT, R.INSUFFICIENT_CPUS}),
        ("y",),
        {"cpus": (2.0, 1.5)},
        "h2",
    )
    stats.used()
    summary = {s.reason: (s.declined, s.processed) for s in stats.summary()}
    assert summary[R.UNFULFILLED_CONSTRAINT] == (1, 3)
    assert summary[R.INSUFFICIENT_CPUS] == (1, 2)
    assert stats.near_misses() == ("needs 2 cpus, best offer had 1.5 (h2)",)


# -- TaskInfo and environment -------------------------------------------------------------


def test_env_vars_as_marathon_sets_them() -> None:
    app = make_app(
        "/prod/web",
        port_definitions=(PortDefinition(name="http"), PortDefinition(name="admin-ui")),
        labels={"team": "a", "bad-key": "x"},
        env={"PORT0": "mine", "FOO": "bar"},
        cpus=0.5,
    )
    env = task_env(app, host="h1", host_ports=[31001, 31002])
    assert env["PORT0"] == "mine"  # the app's own env wins
    assert env["PORT1"] == "31002" and env["PORT"] == "31001"
    assert env["PORTS"] == "31001,31002"
    assert env["PORT_HTTP"] == "31001" and env["PORT_ADMIN_UI"] == "31002"
    assert env["HOST"] == "h1" and env["MARATHON_APP_ID"] == "/prod/web"
    assert env["MARATHON_APP_VERSION"] == str(app.version)
    assert env["MARATHON_APP_RESOURCE_CPUS"] == "0.5"
    assert env["MARATHON_APP_RESOURCE_MEM"] == "16.0"
    assert env["MARATHON_APP_LABELS"] == "TEAM" and env["MARATHON_APP_LABEL_TEAM"] == "a"
    assert env["FOO"] == "bar"
    prefixed = task_env(app, host="h1", host_ports=[1], prefix="P_")
    assert prefixed["P_PORT0"] == "1" and prefixed["P_HOST"] == "h1"
    assert prefixed["MARATHON_APP_ID"] == "/prod/web"


def test_task_info_for_a_command_app() -> None:
    app = make_app(
        "/prod/web", args=("/bin/echo", "hi"), cmd=None, task_kill_grace_period_seconds=3
    )
    info = build_task_info(app, task_id="t.1", agent_id="S1", host="h", resources=[], host_ports=[])
    assert info["name"] == "web.prod"
    assert info["command"]["shell"] is False
    assert info["command"]["arguments"] == ["/bin/echo", "hi"]
    assert info["kill_policy"] == {"grace_period": {"nanoseconds": 3_000_000_000}}


def test_task_user_is_the_apps_else_the_frameworks_mesos_user() -> None:
    def user_of(app_user: str | None, default_user: str | None) -> str | None:
        app = make_app("/prod/web", user=app_user)
        info = build_task_info(
            app,
            task_id="t.1",
            agent_id="S1",
            host="h",
            resources=[],
            host_ports=[],
            default_user=default_user,
        )
        return info["command"].get("user")

    assert user_of("www", "ops") == "www"
    assert user_of(None, "ops") == "ops"
    assert user_of(None, None) is None
    options = SchedulerOptions.from_config(parse_config(["--mesos_user", "ops"]))
    assert options.mesos_user == "ops"
