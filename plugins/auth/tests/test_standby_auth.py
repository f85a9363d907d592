"""Two ``marathon`` processes with marathon-auth on one real ZooKeeper: a standby passes
each caller's identity to the leader safely, and nobody gains by forging the headers
that mark a forwarded request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from marathon_core.testing.processes import RunningMarathon, running_marathon, wait_for

from .conftest import ADMIN, PROD, READER, users_file_text  # type: ignore[import-not-found]

#: What a client could send to pass as forwarded by a standby, or as someone else.
FORGED = {
    "X-Marathon-Via": "1.1 10.9.9.9:8080",
    "X-Forwarded-For": "10.9.9.9",
    "Forwarded": "for=10.9.9.9",
    "X-Forwarded-User": "admin",
    "X-Remote-User": "admin",
}
WRONG = ("admin", "not-the-password")


@contextmanager
def client_from(source: str) -> Iterator[httpx.Client]:
    """A client whose connections come from ``source`` (another loopback address)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        yield client


def leader_of(server: RunningMarathon) -> str | None:
    try:
        answer = httpx.get(f"{server.url}/v2/leader", auth=ADMIN, timeout=5)
    except httpx.HTTPError:
        return None
    return answer.json().get("leader") if answer.status_code == 200 else None


def app_ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(app["id"] for app in answer.json()["apps"])


def test_a_standby_forwards_identities_and_forged_forwarding_gains_nothing(
    zk_url: str, tmp_path: Path
) -> None:
    users = tmp_path / "users.toml"
    users.write_text(users_file_text())
    args = (
        "--master", "http://127.0.0.1:1", "--hostname", "127.0.0.1",
        "--zk", zk_url, "--zk_session_timeout", "2000",
        "--auth_users", str(users), "--http_credentials", ":".join(ADMIN),
        "--auth_max_failures", "3", "--auth_failure_window", "600",
    )  # fmt: skip
    with (
        running_marathon(*args, state_dir=tmp_path / "a") as a,
        running_marathon(*args, state_dir=tmp_path / "b") as b,
    ):
        wait_for(lambda: leader_of(a) and leader_of(a) == leader_of(b), what="a leader")
        leader_address = leader_of(a)
        leader, standby = (a, b) if a.url == f"http://{leader_address}" else (b, a)
        assert leader.url == f"http://{leader_address}"

        with client_from("127.0.0.3") as user:
            # Through the standby: each caller gets what the leader gives it directly.
            anonymous = user.get(f"{standby.url}/v2/apps")
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == 'Basic realm="Mesosphere"'
            app = {"id": "/dev/api", "cmd": "sleep 100"}
            assert user.post(f"{standby.url}/v2/apps", json=app).status_code == 401
            assert user.post(f"{standby.url}/v2/apps", json=app, auth=READER).status_code == 403
            created = user.post(f"{standby.url}/v2/apps", json=app, auth=ADMIN)
            assert created.status_code == 201, created.text
            assert created.headers["x-marathon-leader"] == leader.url  # the leader did it
            prod_app = {"id": "/prod/web", "cmd": "sleep 100"}
            assert user.post(f"{standby.url}/v2/apps", json=prod_app, auth=PROD).status_code == 201
            assert app_ids(user.get(f"{leader.url}/v2/apps", auth=ADMIN)) == [
                "/dev/api",
                "/prod/web",
            ]
            assert app_ids(user.get(f"{standby.url}/v2/apps", auth=PROD)) == ["/prod/web"]
            assert app_ids(user.get(f"{standby.url}/v2/apps", auth=READER)) == [
                "/dev/api",
                "/prod/web",
            ]

        # Forged forwarding headers, to the standby and to the leader: no more than without.
        with client_from("127.0.0.5") as forger:
            for server in (standby, leader):
                apps = f"{server.url}/v2/apps"
                assert forger.get(apps, headers=FORGED).status_code == 401
                assert forger.get(apps, headers=FORGED, auth=WRONG).status_code == 401
                forged_write = forger.delete(f"{apps}/dev/api", headers=FORGED, auth=READER)
                assert forged_write.status_code == 403
                assert app_ids(forger.get(apps, headers=FORGED, auth=PROD)) == ["/prod/web"]

        # Failed logins count against the caller's address, not the standby's: a
        # guesser behind the standby locks out only itself.
        with client_from("127.0.0.2") as guesser, client_from("127.0.0.3") as admin:
            statuses = [
                guesser.get(f"{standby.url}/v2/apps", auth=WRONG).status_code for _ in range(4)
            ]
            assert statuses == [401, 401, 401, 429]
            assert guesser.get(f"{standby.url}/v2/apps", auth=ADMIN).status_code == 429
            assert admin.get(f"{standby.url}/v2/apps", auth=ADMIN).status_code == 200
            assert admin.delete(f"{standby.url}/v2/apps/dev/api", auth=ADMIN).status_code == 200
        # ... and a guesser cannot escape its limit by naming other addresses.
        with client_from("127.0.0.4") as guesser:
            statuses = [
                guesser.get(
                    f"{leader.url}/v2/apps", auth=WRONG, headers={"X-Forwarded-For": f"10.0.0.{n}"}
                ).status_code
                for n in range(4)
            ]
            assert statuses == [401, 401, 401, 429]
        with client_from("127.0.0.3") as admin:
            assert admin.get(f"{leader.url}/v2/apps", auth=ADMIN).status_code == 200

        assert standby.stop() == 0
        assert leader.stop() == 0

    standby_log, leader_log = "".join(standby.log), "".join(leader.log)
    # The forwarded write is audited once, by the leader, naming the real client.
    assert (
        "user='admin' client=127.0.0.1 forwarded_for='127.0.0.3' DELETE '/v2/apps/dev/api' -> 200"
    ) in leader_log
    assert "DELETE '/v2/apps/dev/api' -> 200" not in standby_log
    # The standby refused the guesser itself, and audited that (throttled: one line
    # per address per interval, the rest counted).
    assert "user=None client=127.0.0.2 forwarded_for=None GET '/v2/apps' -> 401" in standby_log
    assert "login=failed" in standby_log
    assert standby_log.count("client=127.0.0.2 forwarded_for") == 1
    for password in (ADMIN[1], READER[1], PROD[1], WRONG[1]):
        assert password not in standby_log + leader_log
