"""ZooKeeper digest authentication: with ``zk://user:password@...`` only that identity can
read or write Marathon's znodes (state, election, and the parents the path needed), and
the migration command locks a tree that was created with open ACLs."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from kazoo import exceptions as ke
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from marathon_core.election import ZkElection
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.redaction import RedactingFilter
from marathon_core.state.store import StateStore
from marathon_core.state.zk import acl
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.zookeeper import ZooKeeperEnsemble

USER, PASSWORD = "marathon", "zk-digest-s3cret"


@pytest.fixture
def base(zookeeper: ZooKeeperEnsemble) -> str:
    """A fresh top-level node name: Marathon creates it (a parent of its path) too."""
    return f"/acl-{uuid.uuid4().hex}"


def _url(zookeeper: ZooKeeperEnsemble, path: str, cred: str | None = f"{USER}:{PASSWORD}") -> str:
    auth = f"{cred}@" if cred is not None else ""
    return f"zk://{auth}{zookeeper.hosts}{path}"


@contextlib.contextmanager
def kazoo(zookeeper: ZooKeeperEnsemble, digest: str | None) -> Iterator[Any]:
    """A plain kazoo client, authenticated with ``digest`` (``user:password``) if given."""
    auth = [("digest", digest)] if digest is not None else None
    client = KazooClient(hosts=zookeeper.hosts, timeout=5, auth_data=auth)
    client.start(timeout=10)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def tree(client: Any, root: str) -> list[str]:
    """``root`` and every node below it."""
    nodes, todo = [], [root]
    while todo:
        path = todo.pop()
        nodes.append(path)
        todo.extend(f"{path}/{c}" for c in client.get_children(path))
    return sorted(nodes)


def assert_locked_out(client: Any, nodes: list[str]) -> None:
    """``client`` can neither read, list, change, add to, delete nor re-ACL any of ``nodes``."""
    denied: list[Callable[[str], Any]] = [
        client.get,
        client.get_children,
        lambda p: client.set(p, b"taken over"),
        lambda p: client.create(f"{p}/intruder", b"x"),
        lambda p: client.set_acls(p, [make_digest_acl("intruder", "x", all=True)]),
    ]
    for node in nodes:
        for attempt in denied:
            with pytest.raises(ke.NoAuthError):
                attempt(node)
    leaves = [n for n in nodes if not any(m.startswith(f"{n}/") for m in nodes)]
    for leaf in leaves:  # deleting needs DELETE on the parent
        with pytest.raises(ke.NoAuthError):
            client.delete(leaf)


def _app(name: str) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(name), cmd="sleep 1", version=Timestamp.parse("2026-01-01T00:00:00.000Z")
    )


async def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.01)


async def test_only_the_digest_identity_reaches_marathons_znodes(
    zookeeper: ZooKeeperEnsemble, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # kazoo logs its auth packet at DEBUG
    caplog.handler.addFilter(RedactingFilter())  # as marathon's handlers have it
    path = f"{base}/nested/marathon"
    leading = trio.Event()

    async def lead() -> None:
        leading.set()
        await trio.sleep_forever()

    client = await ZkClient.connect(_url(zookeeper, path), session_timeout=2.0, timeout=5.0)
    try:
        election = ZkElection(client, "127.0.0.1:8080")
        async with trio.open_nursery() as nursery:
            await nursery.start(election.run, lead)
            with trio.fail_after(10):
                await leading.wait()
            assert election.leader_id == "127.0.0.1:8080"
            state = await StateStore.open(await ZkStorage.open(client), fence=election.fence)
            await state.apps.store(_app("/prod/web"))
            assert (await state.apps.get(PathId.parse("/prod/web"))) is not None

            def check() -> list[str]:
                with kazoo(zookeeper, f"{USER}:{PASSWORD}") as owner:
                    nodes = tree(owner, base)
                    acls = {n: owner.get_acls(n)[0] for n in nodes}
                with kazoo(zookeeper, None) as anonymous:
                    assert_locked_out(anonymous, nodes)
                with kazoo(zookeeper, f"{USER}:wrong-password") as wrong:
                    assert_locked_out(wrong, nodes)
                with kazoo(zookeeper, f"intruder:{PASSWORD}") as other_user:
                    assert_locked_out(other_user, nodes)
                expected = [make_digest_acl(USER, PASSWORD, all=True)]
                assert {n: a for n, a in acls.items() if a != expected} == {}
                return nodes

            nodes = await trio.to_thread.run_sync(check)
            # the parents, the state and the election's ephemeral node are all among them
            assert f"{base}/nested" in nodes and f"{path}/state" in nodes
            assert any(n.startswith(f"{path}/leader-curator/latch-") for n in nodes)
            nursery.cancel_scope.cancel()
    finally:
        await client.aclose()
    # connecting registered the password: kazoo's record of the auth packet is masked
    assert f"{USER}:***" in caplog.text and PASSWORD not in caplog.text


async def test_the_migration_locks_a_tree_made_with_open_acls(
    zookeeper: ZooKeeperEnsemble, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"{base}/marathon"
    # Before: Marathon without credentials (open ACLs).
    async with contextlib.aclosing(await ZkStorage.connect(_url(zookeeper, path, None))) as storage:
        await (await StateStore.open(storage)).apps.store(_app("/old"))
    # Step 1: schedulers restarted with credentials still read the open nodes and
    # create new ones locked.
    async with contextlib.aclosing(await ZkStorage.connect(_url(zookeeper, path))) as storage:
        state = await StateStore.open(storage)
        assert await state.apps.get(PathId.parse("/old")) is not None
        await state.apps.store(_app("/new"))

        def open_nodes() -> list[str]:
            with kazoo(zookeeper, f"{USER}:{PASSWORD}") as owner:
                nodes = tree(owner, path)
            with kazoo(zookeeper, None) as anonymous:
                return [n for n in nodes if _readable(anonymous, n)]

        assert await trio.to_thread.run_sync(open_nodes)  # the old nodes are still open
        # Step 2: the command locks the rest.
        status = await trio.to_thread.run_sync(acl.main, [_url(zookeeper, path)])
        assert status == 0
        out = capsys.readouterr().out
        assert f"now allow only digest:{USER}" in out and PASSWORD not in out

        def locked() -> None:
            with kazoo(zookeeper, f"{USER}:{PASSWORD}") as owner:
                nodes = tree(owner, path)
            with kazoo(zookeeper, None) as anonymous:
                assert_locked_out(anonymous, nodes)

        await trio.to_thread.run_sync(locked)
        for app in ("/old", "/new"):
            assert await state.apps.get(PathId.parse(app)) is not None
    # Another identity cannot take the tree over with the command.
    intruder = _url(zookeeper, path, "intruder:x1234")
    status = await trio.to_thread.run_sync(acl.main, [intruder])
    assert status == 1
    assert "already locked to another identity" in capsys.readouterr().err


def _readable(client: Any, node: str) -> bool:
    try:
        client.get(node)
    except ke.NoAuthError:
        return False
    return True


def test_the_migration_wants_a_user() -> None:
    with pytest.raises(SystemExit) as exited:
        acl.main(["zk://127.0.0.1:1/marathon"])
    assert exited.value.code == 2
