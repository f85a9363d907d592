"""The ``marathon`` command as a user runs it: real processes, real signals, real pip."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

MARATHON = [sys.executable, "-m", "marathon_core.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MARATHON, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_help_lists_marathons_flags() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag in (
        "--master",
        "--zk",
        "--http_port",
        "--framework_name",
        "--failover_timeout",
        "--mesos_role",
        "--task_launch_timeout",
        "--reconciliation_interval",
        "--state_dir",
        "--hostname",
        "--disable_checkpoint",
    ):
        assert flag in result.stdout


def test_plugins_lists_the_builtins() -> None:
    result = run("plugins")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "DISTRIBUTION", "VERSION", "HOOKS"]
    assert any(r.startswith("builtin-masters") and "marathon-core (built-in)" in r for r in rows)


def write_distribution(site: Path, name: str, module_source: str) -> None:
    """An installed distribution as pip lays it out: a module plus its .dist-info."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[marathon]\n{name} = {module}\n")


def test_a_plugin_that_fails_to_import_stops_everything_with_one_line(tmp_path: Path) -> None:
    write_distribution(tmp_path, "marathon-broken", "import does_not_exist\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args in (["plugins"], ["--master", "http://127.0.0.1:5050"]):
        result = run(*args, env=env)
        assert result.returncode == 3
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "marathon-broken 0.1" in lines[0]
        assert "ModuleNotFoundError" in lines[0] and "does_not_exist" in lines[0]


def test_master_local_without_the_plugin_names_the_package(tmp_path: Path) -> None:
    result = run(
        "--master", "local", "--disable_plugin", "mesos-local", "--state_dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "marathon: error: --master local needs the embedded Mesos cluster: "
        "pip install marathon-mesos-local"
    ]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A running ``marathon`` against an HTTP master URL (no master needs to answer yet)."""
    proc = subprocess.Popen(
        [
            *MARATHON,
            "--master",
            "http://127.0.0.1:5050",
            "--state_dir",
            str(tmp_path),
            "--http_port",
            "0",
            "--http_address",
            "127.0.0.1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "marathon ready" in line:
                break
        else:
            pytest.fail(f"server exited early with {proc.wait()}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_on_signals(server: subprocess.Popen[str], signum: int) -> None:
    started = time.monotonic()
    server.send_signal(signum)
    assert server.wait(timeout=5) == 0
    assert time.monotonic() - started < 5


def test_installing_a_plugin_makes_it_appear_and_uninstalling_removes_it(tmp_path: Path) -> None:
    project = tmp_path / "marathon-hello"
    (project / "marathon_hello").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "marathon-hello"
        version = "1.2.3"
        [project.entry-points.marathon]
        hello = "marathon_hello"
    """)
    )
    (project / "marathon_hello" / "__init__.py").write_text(
        textwrap.dedent("""\
        from marathon_core import hookimpl

        @hookimpl
        def marathon_constraint_operators():
            return {}
    """)
    )
    python = environment_of_its_own(tmp_path / "venv")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", str(project)], check=True, capture_output=True, timeout=120
    )

    def plugins() -> str:
        return subprocess.run(
            [python, "-m", "marathon_core.cli", "plugins"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip

    try:
        row = next(r for r in plugins().splitlines() if r.startswith("hello "))
        assert "marathon-hello" in row and "1.2.3" in row
        assert "marathon_constraint_operators" in row
    finally:
        subprocess.run(
            [*pip, "uninstall", "-y", "marathon-hello"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    assert "hello " not in plugins()


def environment_of_its_own(root: Path) -> str:
    """A venv that sees this environment's packages (editable ones too) through a .pth
    file, so pip installs into it, never into the environment that tests on other
    pytest-xdist workers run in; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = str(root / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = sysconfig.get_path("purelib")
    Path(site, "outer-environment.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_state_lives_in_state_dir(server: subprocess.Popen[str], tmp_path: Path) -> None:
    assert (tmp_path / "marathon-state.sqlite3").is_file()


def test_unreachable_zookeeper_ends_the_server_with_a_clear_error(tmp_path: Path) -> None:
    result = run(
        "--master",
        "http://127.0.0.1:5050",
        "--zk",
        "zk://127.0.0.1:1/marathon",
        "--zk_timeout",
        "500",
        "--state_dir",
        str(tmp_path),
        "--http_port",
        "0",
        "--http_address",
        "127.0.0.1",
    )
    assert result.returncode == 100
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("marathon: error: state store:")
