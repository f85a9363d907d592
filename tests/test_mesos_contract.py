"""Contract: every call we build parses into the real ``mesos.v1.scheduler.Call``.

Skipped without the protos (the ``mesos_protos`` fixture), except when CI=true,
where that is a failure. The scheduler tests on the real cluster also record every call they
send and check them the same way (``tests/test_scheduler_cluster.py``).
"""

from __future__ import annotations

import random
from types import SimpleNamespace

from marathon_core.config import Config
from marathon_core.mesos import calls
from marathon_core.mesos.events import decode_offer
from marathon_core.model.app import FetchUri, PortDefinition
from marathon_core.scheduler.offers import OfferPool, match
from marathon_core.scheduler.taskinfo import build_task_info
from marathon_core.testing.mesos_protos import parse_strict

from .scheduler_helpers import make_app  # type: ignore[import-not-found]

OFFER = {
    "id": {"value": "M-O7"},
    "framework_id": {"value": "M-0000"},
    "agent_id": {"value": "M-S0"},
    "hostname": "node1",
    "allocation_info": {"role": "*"},
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*",
         "allocation_info": {"role": "*"}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*",
         "allocation_info": {"role": "*"}},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 1000.0}, "role": "*",
         "allocation_info": {"role": "*"}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]},
         "role": "*", "allocation_info": {"role": "*"}},
    ],
    "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
}  # fmt: skip


def with_framework(call: dict) -> dict:
    call.setdefault("framework_id", {"value": "M-0000"})
    return call


def test_every_call_builder_parses(mesos_protos: SimpleNamespace) -> None:
    config = Config(
        master="http://m:5050", webui_url="http://ui", enable_features="task_killing,gpu_resources"
    )
    info = calls.framework_info(config)
    assert {"PARTITION_AWARE", "MULTI_ROLE"} <= {c["type"] for c in info["capabilities"]}
    assert info["failover_timeout"] == 604800.0 and info["checkpoint"] is True
    again = calls.subscribe(calls.framework_info(config, framework_id="M-0000"))
    assert again["framework_id"] == {"value": "M-0000"}
    assert again["subscribe"]["framework_info"]["id"] == {"value": "M-0000"}
    app = make_app(
        "/prod/web",
        ports=2,
        port_definitions=(PortDefinition(name="http"), PortDefinition(name="admin")),
        fetch=(FetchUri("http://x/a.tgz"),),
        labels={"team": "a"},
        task_kill_grace_period_seconds=7,
        cmd="python3 -m http.server $PORT0",
    )
    pool = OfferPool(decode_offer(OFFER))
    result = match(app, pool, {}, {}, random.Random(1))
    assert not hasattr(result, "reasons"), result
    task = build_task_info(
        app, task_id="prod_web.instance-1._app.1", agent_id="M-S0", host="node1",
        resources=result.resources, host_ports=result.host_ports,
    )  # fmt: skip
    built = [
        calls.subscribe(info),
        again,
        calls.accept(["M-O7"], [task], refuse_seconds=5),
        calls.decline(["M-O7", "M-O8"], refuse_seconds=120),
        calls.kill("t.1", agent_id="M-S0", grace_period_seconds=2.5),
        calls.kill("t.1"),
        calls.acknowledge("M-S0", "t.1", "q83vEjRWeJCrze8SNFZ4kA=="),
        calls.reconcile([("t.1", "M-S0"), ("t.2", None)]),
        calls.reconcile(),
        calls.revive(["*"]),
        calls.suppress(["*"]),
        calls.teardown(),
    ]
    for call in built:
        if call["type"] != "SUBSCRIBE":
            with_framework(call)
        parse_strict(mesos_protos, call, mesos_protos.scheduler.Call)
