"""The parts without I/O: settings, errors, progress from events, diffs, reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marathon_ctl.config import DEFAULT_URL, resolve, split_urls
from marathon_ctl.diff import app_changes, group_apps, plan, removed_apps
from marathon_ctl.errors import ApiError, CtlError
from marathon_ctl.progress import DeploymentProgress
from marathon_ctl.why import (
    deployment_lines,
    placement_lines,
    reason_lines,
    status_head,
    unhealthy_lines,
)


def test_urls_split_on_commas_and_repeats_and_get_a_scheme() -> None:
    assert split_urls(["a:8080,b:8080", "https://c/"]) == (
        "http://a:8080",
        "http://b:8080",
        "https://c",
    )


def test_flags_beat_the_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = ["f1:1", "f2:2"]\nuser = "file:pw"\ntoken = "file-token"\n')
    env = {"MARATHON_CTL_CONFIG": str(config)}
    from_file = resolve(urls=(), user=None, token=None, environ=env)
    assert from_file.urls == ("http://f1:1", "http://f2:2")
    assert (from_file.user, from_file.token) == ("file:pw", "file-token")
    env |= {"MARATHON_URL": "e:1", "MARATHON_USER": "env:pw"}
    from_env = resolve(urls=(), user=None, token=None, environ=env)
    assert (from_env.urls, from_env.user) == (("http://e:1",), "env:pw")
    from_flags = resolve(urls=("x:1",), user="flag:pw", token=None, environ=env)
    assert (from_flags.urls, from_flags.user) == (("http://x:1",), "flag:pw")
    nothing = resolve(urls=(), user=None, token=None, environ={"HOME": str(tmp_path)})
    assert nothing.urls == (DEFAULT_URL,) and nothing.user is None


def test_a_user_without_a_password_is_a_usage_error() -> None:
    with pytest.raises(CtlError, match="user:password"):
        resolve(urls=(), user="alice", token=None, environ={"HOME": "/nonexistent"})


def test_api_errors_show_marathons_message_and_field_paths_as_given() -> None:
    body = {
        "message": "Object is not valid",
        "details": [{"path": "/instances", "errors": ["error.min"]}],
    }
    text = str(ApiError(422, body, "PUT", "/v2/apps/web"))
    assert text == "PUT /v2/apps/web: 422 Object is not valid\n  /instances: error.min"
    locked = ApiError(409, {"message": "locked", "deployments": [{"id": "d1"}]}, "PUT", "/x")
    assert "d1 (--force cancels them)" in str(locked)


def _app(version: str, tasks: list[dict[str, Any]], instances: int = 2) -> dict[str, Any]:
    return {
        "id": "/web",
        "instances": instances,
        "version": version,
        "versionInfo": {"lastConfigChangeAt": version},
        "tasks": tasks,
    }


def _changed(instance: str, condition: str, version: str) -> dict[str, Any]:
    return {
        "timestamp": "2026-01-01T12:00:09.000Z",
        "instanceId": instance,
        "condition": condition,
        "runSpecId": "/web",
        "host": "agent-1",
        "runSpecVersion": version,
    }


def test_a_rolling_upgrade_is_counted_from_instance_events() -> None:
    old = [
        {"id": f"web.instance-old{n}._app.1", "state": "TASK_RUNNING", "version": "v1"}
        for n in (1, 2)
    ]
    progress = DeploymentProgress("d1", "v2")
    app = progress.add_app(_app("v2", old))
    assert (app.new_running, app.old_left) == (0, 2)
    plan_ = {"id": "d1", "steps": [{"actions": [{"action": "RestartApplication", "app": "/web"}]}]}
    fact = progress.handle("deployment_info", {"plan": plan_, "currentStep": plan_["steps"][0]})
    assert fact is not None and fact.text == "step 1/1 RestartApplication /web"
    fact = progress.handle("instance_changed_event", _changed("web.instance-new1", "Running", "v2"))
    assert fact is not None and fact.text == "/web.new1 Running on agent-1"
    fact = progress.handle("instance_changed_event", _changed("web.instance-old1", "Killed", "v1"))
    assert fact is not None and fact.text == "old /web.old1 Killed on agent-1"
    assert (app.new_running, app.old_left) == (1, 1)
    assert progress.handle("instance_changed_event", {"runSpecId": "/other"}) is None
    assert progress.handle("deployment_success", {"id": "other", "plan": {}}) is None
    progress.handle("deployment_success", {"id": "d1", "plan": plan_})
    assert progress.outcome == "succeeded"


def test_a_deployment_gone_with_the_app_at_another_version_was_rolled_back() -> None:
    progress = DeploymentProgress("d1", "v2")
    progress.add_app(_app("v2", []))
    progress.settle({"/web": {"id": "/web", "version": "v3"}})
    assert progress.outcome == "rolled back" and "v3" in progress.reason
    progress = DeploymentProgress("d1", "v2")
    progress.add_app(_app("v2", []))
    progress.settle({"/web": {"id": "/web", "version": "v2"}})
    assert progress.outcome == "succeeded"
    progress = DeploymentProgress("d1", "v2")
    progress.add_app(_app("v2", [])).removed = True
    progress.settle({"/web": None})
    assert progress.outcome == "succeeded"


def test_a_failed_deployment_says_why() -> None:
    progress = DeploymentProgress("d1", "v2")
    fact = progress.handle("deployment_failed", {"id": "d1", "plan": {}, "reason": "boom"})
    assert progress.outcome == "failed" and fact is not None and fact.text.endswith("boom")


def test_diff_compares_the_fields_the_file_gives() -> None:
    local = {"id": "/web", "cmd": "sleep 2", "instances": 2, "env": {"A": "1", "B": "2"}}
    running = {
        "id": "/web",
        "cmd": "sleep 1",
        "instances": 2,
        "env": {"A": "1", "C": "3"},
        "mem": 64,
    }
    assert app_changes(local, running) == [
        '~ cmd: "sleep 1" → "sleep 2"',
        '+ env.B: "2"',
        '- env.C: "3"',
    ]


def test_a_group_diff_creates_updates_and_removes_apps() -> None:
    group = {"id": "/prod", "apps": [{"id": "web", "cmd": "a"}, {"id": "/prod/api", "cmd": "b"}]}
    local = group_apps(group)
    assert sorted(local) == ["/prod/api", "/prod/web"]
    lines = plan(
        local, {"/prod/web": {"id": "/prod/web", "cmd": "a"}, "/prod/api": None}, ["/prod/old"]
    )
    assert lines == ["create /prod/api", '  + cmd: "b"', "unchanged /prod/web", "remove /prod/old"]


def test_a_group_update_removes_only_what_it_replaces() -> None:
    running = {
        "id": "/prod",
        "apps": [{"id": "/prod/web"}, {"id": "/prod/old"}],
        "groups": [
            {"id": "/prod/db", "apps": [{"id": "/prod/db/pg"}], "groups": []},
            {"id": "/prod/gone", "apps": [{"id": "/prod/gone/x"}], "groups": []},
        ],
    }
    # Apps given, groups not: the subgroups are kept.
    assert removed_apps({"id": "/prod", "apps": [{"id": "web"}]}, running) == ["/prod/old"]
    # Groups given, apps not: the apps are kept; a named subgroup without apps keeps its own.
    only_db = {"id": "/prod", "groups": [{"id": "db"}]}
    assert removed_apps(only_db, running) == ["/prod/gone/x"]
    db_emptied = {"id": "/prod", "groups": [{"id": "db", "apps": []}, {"id": "gone"}]}
    assert removed_apps(db_emptied, running) == ["/prod/db/pg"]
    # Two levels down, by the same rule.
    replica = {"id": "/prod/db/replica", "apps": [{"id": "/prod/db/replica/r"}], "groups": []}
    running["groups"][0]["groups"] = [replica]  # type: ignore[index]
    keeps_replica = {"id": "/prod", "groups": [{"id": "db", "groups": [{"id": "replica"}]}]}
    assert removed_apps(keeps_replica, running) == ["/prod/gone/x"]
    empty_replica = {"id": "replica", "apps": []}
    replaces_r = {"id": "/prod", "groups": [{"id": "db", "groups": [empty_replica]}]}
    assert removed_apps(replaces_r, running) == ["/prod/db/replica/r", "/prod/gone/x"]


def test_placement_lines_read_this_servers_and_marathons_queue_shapes() -> None:
    entry = {
        "count": 1,
        "delay": {"timeLeftSeconds": 0, "overdue": True},
        "processedOffersSummary": {
            "processedOffersCount": 6,
            "unusedOffersCount": 4,
            "rejectSummaryLastOffers": [
                {"reason": "UnfulfilledRole", "declined": 0, "processed": 6},
                {"reason": "UnfulfilledConstraint", "declined": 4, "processed": 6},
            ],
            "lastRejectReasons": ["h1: UNIQUE: hostname=h1 already has 1 instance(s)"],
            "nearMisses": [],
        },
        "lastUnusedOffers": [{"offer": {"hostname": "h2"}, "reason": ["InsufficientMemory"]}],
    }
    assert placement_lines(entry) == [
        "1 instance waiting for an offer: 6 offers seen, 4 not used",
        "rejected for: constraints 4/6",
        "h1: UNIQUE: hostname=h1 already has 1 instance(s)",
        "offer from h2 declined: mem",
    ]
    entry["delay"] = {"timeLeftSeconds": 12, "overdue": False}
    assert placement_lines(entry)[-1].startswith("backoff: next launch in 12s")


def test_why_names_failing_health_checks_and_readiness() -> None:
    app = {
        "tasks": [
            {"id": "t1", "healthCheckResults": [{"alive": True}]},
            {
                "id": "t2",
                "healthCheckResults": [
                    {"alive": False, "lastFailureCause": "503", "consecutiveFailures": 2}
                ],
            },
        ]
    }
    assert unhealthy_lines(app) == ["unhealthy: t2: 503 (2 failures in a row)"]
    deployment = {
        "id": "d1",
        "currentStep": 1,
        "totalSteps": 2,
        "currentActions": [
            {
                "app": "/web",
                "readinessCheckResults": [
                    {
                        "taskId": "t3",
                        "name": "ready",
                        "ready": False,
                        "lastResponse": {"status": 500},
                    }
                ],
            }
        ],
    }
    assert deployment_lines(deployment, "/web") == [
        "deployment d1 in progress (step 1/2)",
        "not ready: t3 ready (last answer 500)",
    ]


def test_the_plan_names_the_apps_to_follow_and_those_it_stops() -> None:
    progress = DeploymentProgress("d1", "v2")
    progress.add_app(_app("v1", []))
    steps = [
        {"actions": [{"action": "StopApplication", "app": "/web"}]},
        {"actions": [{"action": "ScaleApplication", "app": "/api"}]},
    ]
    plan_ = {"id": "d1", "steps": steps}
    progress.handle("deployment_info", {"plan": plan_, "currentStep": steps[0]})
    assert progress.plan_apps == {"/web", "/api"} and progress.apps["/web"].removed
    progress.settle({"/web": None, "/api": {"id": "/api", "version": "v2"}})
    assert progress.outcome == "succeeded"


def test_the_deployment_status_reason_comes_with_the_details_its_kind_carries() -> None:
    stuck = {
        "action": "ScaleApplication",
        "step": 2,
        "state": "waiting",
        "progress": {"current": 2, "target": 3, "oldInstances": 1, "newInstances": 3},
        "reason": {
            "kind": "noMatchingOffer",
            "message": "1 instance(s) wait: no offer matches: h1: UNIQUE: taken",
            "lastRejectReasons": ["h1: UNIQUE: taken", "h2: UNIQUE: taken"],
            "nearMisses": ["h3: mem 64 < 128"],
            "rejectSummaryLastOffers": [
                {"reason": "UnfulfilledConstraint", "declined": 2, "processed": 3}
            ],
        },
    }
    assert status_head({"id": "d1", "totalSteps": 2}, stuck) == (
        "deployment d1 step 2/2 ScaleApplication: waiting, 2/3 new ready, 1 old left"
    )
    assert reason_lines(stuck) == [
        "1 instance(s) wait: no offer matches: h1: UNIQUE: taken",
        "rejected for: constraints 2/3",
        "h2: UNIQUE: taken",
        "near miss: h3: mem 64 < 128",
    ]
    backoff = {"reason": {"kind": "backoff", "message": "backing off", "nextLaunchAt": "t"}}
    assert reason_lines(backoff) == ["backing off", "(marathon-ctl delay reset to retry now)"]
    results = [
        {"taskId": "t1", "name": "ready", "ready": False, "lastFailure": "status 503"},
        {"taskId": "t2", "name": "ready", "ready": True},
    ]
    readiness = {
        "reason": {
            "kind": "readinessChecks",
            "message": "1 new instance(s) not ready yet: status 503",
            "readinessCheckResults": results,
        }
    }
    assert reason_lines(readiness)[1:] == ["not ready: t1 ready: status 503"]
    assert reason_lines({"state": "done"}) == []
