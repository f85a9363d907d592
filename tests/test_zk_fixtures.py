"""The pytest plugin shipping the ZooKeeper fixtures: discovered, serving, strict under CI."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from marathon_core.testing import pytest_plugin, zookeeper
from marathon_core.testing.zookeeper import ZooKeeperEnsemble, zk_mode


def test_plugin_is_an_installed_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "marathon"]
    assert ep.value == "marathon_core.testing.pytest_plugin"
    assert pytestconfig.pluginmanager.hasplugin("marathon")


def test_session_zookeeper_serves(zookeeper: ZooKeeperEnsemble, zk_url: str) -> None:
    (server,) = zookeeper.servers
    assert zk_mode(server.client_port) == "standalone"
    assert server.pid is not None
    assert zk_url.startswith(f"zk://{zookeeper.hosts}/marathon-test/")


def test_missing_zookeeper_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zookeeper, "missing_zookeeper", lambda: "java is not installed")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="java is not installed"):
        pytest_plugin.require_zookeeper()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        pytest_plugin.require_zookeeper()


@pytest.mark.zookeeper
def test_stopping_a_server_kills_only_its_pid(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest_plugin.require_zookeeper()
    with zookeeper.running_zookeeper(tmp_path_factory.mktemp("zk-stop")) as ensemble:
        (server,) = ensemble.servers
        proc = server.proc
        assert proc is not None and proc.poll() is None
        server.stop()
        assert proc.poll() is not None and server.mode() is None
        server.stop()  # idempotent
        server.start()
        assert server.wait_serving() == "standalone"
    assert server.proc is not None and server.proc.poll() is not None
    assert not server.directory.exists()
