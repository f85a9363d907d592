"""A task's sandbox on real agents: fetched URIs, the task's user, and ``/files``.

Scheduler-level tests (the test is the framework, its traffic checked against the
real protos), then the same through ``marathon --master local`` and its REST API.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from marathon_core.task_process import task_user
from marathon_core.testing.processes import (
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)
from marathon_mesos_local.agent.lifecycle import unreachable_ancestor
from marathon_mesos_local.testing import master_state, task_info


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    with searchable_state_dir() as path:
        yield path


def make_tarball(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


async def agent_url(master_url: str) -> str:
    (slave,) = (await master_state(master_url))["slaves"]
    return "http://" + slave["pid"].split("@", 1)[1]


async def sandbox_of(agent: str, task_id: str) -> str:
    """The task's executor ``directory`` in the agent's ``/state``, as clients find it."""
    async with httpx.AsyncClient(timeout=5) as http:
        state = (await http.get(f"{agent}/state")).json()
    for framework in state["frameworks"]:
        for executor in framework["executors"]:
            if any(t["id"] == task_id for t in executor["tasks"] + executor["completed_tasks"]):
                return str(executor["directory"])
    raise AssertionError(f"{task_id} is not on {agent}: {state}")


async def read_until(agent: str, path: str, pattern: str, timeout: float = 10) -> str:
    """Tail ``path`` through ``/files/read`` until it matches ``pattern``."""
    text = ""
    async with httpx.AsyncClient(timeout=5) as http:
        with trio.fail_after(timeout):
            while not re.search(pattern, text):
                response = await http.get(
                    f"{agent}/files/read", params={"path": path, "offset": len(text)}
                )
                assert response.status_code == 200, response.text
                text += response.json()["data"]
                await trio.sleep(0.05)
    return text


async def launch(client: Any, task_id: str, command: str, **command_fields: Any) -> None:
    offer = (await client.wait_offers())[0]
    info = task_info(offer, task_id, command)
    info["command"].update(command_fields)
    await client.launch([offer], [info], filters={"refuse_seconds": 0})


async def test_a_failed_fetch_is_task_failed_naming_the_uri(
    cluster, schedulers, nursery, file_server
) -> None:
    url, _, _ = file_server
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    missing = f"{url}/missing.tgz"
    await launch(client, "fetch.1", "true", uris=[{"value": missing, "extract": True}])
    failed = await client.wait_update("fetch.1", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["source"] == "SOURCE_AGENT"
    assert failed["message"].startswith(
        "Failed to launch container: Failed to fetch all URIs for container '"
    )
    assert failed["message"].endswith(
        f"Failed to fetch '{missing}': Error downloading resource, received HTTP return code 404"
    )
    assert client.states("fetch.1") == ["TASK_STARTING", "TASK_FAILED"]


async def test_a_kill_during_a_stalled_fetch_is_not_held_up(cluster, schedulers, nursery) -> None:
    """A server that accepts and never answers: the kill still ends the task at once."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def hold(stream: trio.SocketStream) -> None:
        async with stream:
            await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    await launch(client, "fetch.3", "true", uris=[{"value": f"http://127.0.0.1:{port}/x.tgz"}])
    await client.wait_update("fetch.3", "TASK_STARTING")
    await trio.sleep(0.3)  # the download has started and stalls
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "fetch.3"}}})
    killed = await client.wait_update("fetch.3", "TASK_KILLED", timeout=3)
    assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert client.states("fetch.3") == ["TASK_STARTING", "TASK_KILLED"]


async def test_fetched_archive_and_script_run_in_the_sandbox(
    cluster, schedulers, nursery, file_server
) -> None:
    url, root, _ = file_server
    make_tarball(root / "site.tgz", {"site/greeting.txt": "hello from the tarball"})
    (root / "show.sh").write_text("#!/bin/sh\ncat site/greeting.txt\nsleep 300\n")
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    uris = [
        {"value": f"{url}/site.tgz", "extract": True},
        {"value": f"{url}/show.sh", "executable": True},
    ]
    await launch(client, "fetch.2", "./show.sh", uris=uris)
    await client.wait_update("fetch.2", "TASK_RUNNING")
    agent = await agent_url(cluster.url)
    sandbox = await sandbox_of(agent, "fetch.2")
    await read_until(agent, f"{sandbox}/stdout", "hello from the tarball")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_a_task_runs_as_its_user(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    command = "id -u; id -gn; touch mine; stat -c 'owner=%U' mine; stat -c 'box=%U' .; sleep 300"
    await launch(client, "who.1", command, user="nobody")
    await client.wait_update("who.1", "TASK_RUNNING")
    agent = await agent_url(cluster.url)
    sandbox = await sandbox_of(agent, "who.1")
    out = await read_until(agent, f"{sandbox}/stdout", "box=")
    uid = out.split()[0]
    assert int(uid) == 65534, out
    assert "owner=nobody" in out and "box=nobody" in out
    async with httpx.AsyncClient(timeout=5) as http:
        listing = (await http.get(f"{agent}/files/browse", params={"path": sandbox})).json()
    owners = {Path(e["path"]).name: e["uid"] for e in listing}
    assert owners["stdout"] == owners["mine"] == "nobody"


async def test_an_unknown_user_is_task_failed(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    await launch(client, "who.2", "true", user="no-such-user-here")
    failed = await client.wait_update("who.2", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["message"] == (
        "Failed to launch container: Failed to get user information for "
        "'no-such-user-here': No such user 'no-such-user-here'"
    )


async def test_files_serve_only_sandboxes(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    command = "ln -s / root; ln -s .. up; echo ready; sleep 300"
    await launch(client, "files.1", command)
    await client.wait_update("files.1", "TASK_RUNNING")
    agent = await agent_url(cluster.url)
    sandbox = await sandbox_of(agent, "files.1")
    await read_until(agent, f"{sandbox}/stdout", "ready")
    agent_id = cluster.agent_id(0)
    virtual = f"/slaves/{agent_id}/frameworks/{client.framework_id}/executors/files.1/runs/latest"
    async with httpx.AsyncClient(timeout=5) as http:

        async def status(endpoint: str, path: str) -> int:
            response = await http.get(
                f"{agent}/files/{endpoint}", params={"path": path, "offset": 0}
            )
            return response.status_code

        read = await http.get(f"{agent}/files/read", params={"path": f"{virtual}/stdout"})
        assert read.json()["offset"] == len("ready\n")
        assert await status("browse", virtual) == 200
        for path in (
            f"{sandbox}/root/etc/passwd",
            f"{sandbox}/up",
            f"{sandbox}/../../../../../../../meta/agent.json",
            f"{virtual}/root/etc",
            "/etc/passwd",
            str(cluster.agent_work_dir(0) / "meta" / "agent.json"),
        ):
            assert await status("read", path) == 404, path
            assert await status("browse", path) == 404, path


@pytest.mark.processes
def test_fetch_and_user_through_marathon(tmp_path: Path, file_server) -> None:
    """An app with ``fetch`` and ``user`` on ``marathon --master local``: the tarball is
    extracted, the script made executable, and the task runs as nobody."""
    url, root, _ = file_server
    make_tarball(root / "app.tar.gz", {"app/message.txt": "fetched through marathon"})
    (root / "start.sh").write_text("#!/bin/sh\ncat app/message.txt; echo; id -u\nsleep 300\n")
    user = {"user": "nobody"} if os.geteuid() == 0 else {}
    app = {
        "id": "/sandbox/fetched",
        "cmd": "./start.sh",
        "cpus": 0.1,
        "mem": 32,
        "instances": 1,
        "fetch": [
            {"uri": f"{url}/app.tar.gz", "extract": True},
            {"uri": f"{url}/start.sh", "executable": True, "extract": False},
        ],
        **user,
    }
    with running_marathon(*local_cluster_args(1), state_dir=tmp_path / "state") as server:
        response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
        assert response.status_code == 201, response.text

        def running() -> dict[str, Any] | None:
            tasks = httpx.get(f"{server.url}/v2/apps/sandbox/fetched/tasks", timeout=5).json()
            found = [t for t in tasks["tasks"] if t["state"] == "TASK_RUNNING"]
            return found[0] if found else None

        task = wait_for(running, timeout=30, what="the fetched task running")
        master = next(
            m.group(1)
            for line in server.log
            if (m := re.search(r"marathon ready: master (http://\S+?),", line))
        )

        async def output() -> str:
            agent = await agent_url(master)
            return await read_until(
                agent, f"{await sandbox_of(agent, task['id'])}/stdout", r"\d+\n"
            )

        out = trio.run(output)
        assert "fetched through marathon" in out
        if user:
            assert out.split()[-1] == "65534", out
        assert server.stop() == 0


@pytest.mark.cluster
@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs a root agent")
def test_tasks_run_as_nobody_unless_asked_otherwise(searchable_dir: Path) -> None:
    """``marathon --master local`` as root: a task whose app names no user runs as
    ``nobody`` and can write its sandbox (also by ``$MESOS_SANDBOX``); an app's
    ``user`` (here ``root``, which must be asked for) overrides it."""
    command = (
        'id -un; touch here "$MESOS_SANDBOX/there" && stat -c "owner=%U" here; '
        'echo err >&2; echo "done"; sleep 300'
    )
    apps = {
        "/who/default": {},
        "/who/root": {"user": "root"},
    }
    with running_marathon(*local_cluster_args(1), state_dir=searchable_dir) as server:
        for app_id, extra in apps.items():
            body = {"id": app_id, "cmd": command, "cpus": 0.1, "mem": 32, **extra}
            response = httpx.post(f"{server.url}/v2/apps", json=body, timeout=10)
            assert response.status_code == 201, response.text
        master = wait_for(
            lambda: next(
                (
                    m.group(1)
                    for line in server.log
                    if (m := re.search(r"marathon ready: master (http://\S+?),", line))
                ),
                None,
            ),
            what="the embedded master's URL",
        )

        def running(app_id: str) -> str | None:
            tasks = httpx.get(f"{server.url}/v2/apps{app_id}/tasks", timeout=5).json()
            found = [t["id"] for t in tasks["tasks"] if t["state"] == "TASK_RUNNING"]
            return found[0] if found else None

        task_ids = {a: wait_for(lambda a=a: running(a), what=f"{a} running") for a in apps}

        async def outputs() -> dict[str, tuple[str, str]]:
            agent = await agent_url(master)
            found = {}
            for app_id, task_id in task_ids.items():
                sandbox = await sandbox_of(agent, task_id)
                out = await read_until(agent, f"{sandbox}/stdout", "done")
                err = await read_until(agent, f"{sandbox}/stderr", "err")
                found[app_id] = (out, err)
            return found

        found = trio.run(outputs)
        assert server.stop() == 0
    default_out, default_err = found["/who/default"]
    assert default_out.split()[:2] == ["nobody", "owner=nobody"], default_out
    assert "err" in default_err
    root_out, _ = found["/who/root"]
    assert root_out.split()[:2] == ["root", "owner=root"], root_out


@pytest.mark.skipif(os.geteuid() != 0, reason="looking up another user's permissions")
def test_unreachable_ancestor_names_the_directory_nobody_cannot_pass(searchable_dir: Path) -> None:
    nobody = task_user("nobody")
    assert nobody is not None
    closed = searchable_dir / "closed"
    sandbox = closed / "work" / "sandbox"
    sandbox.mkdir(parents=True)
    closed.chmod(0o700)
    assert unreachable_ancestor(sandbox, nobody) == closed
    closed.chmod(0o711)  # search alone is enough
    assert unreachable_ancestor(sandbox, nobody) is None
