"""Each distribution's wheel holds every module of its package: what ``pip install .``
(the README's quick start) installs, not only what an editable install finds. The
distributions are the core and every one under ``plugins/``, ``clients/`` and
``frameworks/`` (as ``.ci/run`` finds them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Where distributions other than the core live.
KINDS = ("plugins", "clients", "frameworks")
DISTRIBUTIONS = [
    ROOT,
    *sorted(p.parent for kind in KINDS for p in (ROOT / kind).glob("*/pyproject.toml")),
]


def package_modules(distribution: Path) -> set[str]:
    """Paths of the package's modules as a wheel holds them (``pkg/sub/mod.py``)."""
    return {
        str(path.relative_to(distribution))
        for package in distribution.glob("marathon_*/__init__.py")
        for path in package.parent.rglob("*.py")
    }


#: Not part of a distribution's source, or left by earlier builds (setuptools would
#: reuse a stale ``build/`` and hide a package the configuration leaves out).
IGNORED = shutil.ignore_patterns(
    ".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks", "docs", *KINDS
)


def _name(distribution: Path) -> str:
    """``core``, ``plugins/rest``, ``clients/ctl``, ...: a test id per distribution."""
    return distribution.relative_to(ROOT).as_posix() if distribution != ROOT else "core"


def test_the_clients_are_built_too() -> None:
    """Not only the plugins: a glob that found nothing would pass unnoticed."""
    kinds = {_name(d).split("/")[0] for d in DISTRIBUTIONS}
    assert {"core", "plugins", "clients"} <= kinds


@pytest.mark.processes
@pytest.mark.parametrize("distribution", DISTRIBUTIONS, ids=_name)
def test_the_wheel_holds_every_module(distribution: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(distribution, source, ignore=IGNORED)
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".py")}
    expected = package_modules(distribution)
    assert expected and expected <= shipped, sorted(expected - shipped)
