"""docs/constraints.md's third-party example is real: pip installs it, the core finds it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

EXAMPLE = Path(__file__).parent / "example_plugin"

CHECK = """
import importlib.metadata
from marathon_core.contracts.placement import OfferView, Placed
from marathon_core.plugins import get_plugin_host

eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="marathon")}
assert eps["constraint-inset"] == "marathon_constraint_inset.plugin", eps

others = set(eps) - {"constraint-inset", "constraints"}  # sibling plugins are not our business
op = get_plugin_host(blocked=others).constraint_operators()["IN_SET"]
op.validate("rack", "r1,r2")
offer = OfferView(hostname="h", agent_id="a", attributes={"rack": "r2"})
assert op.filter(offer, "rack", "r1,r2", Placed.empty(instances=1)).ok
assert not op.filter(offer, "rack", "r1,r3", Placed.empty(instances=1)).ok
print("IN_SET discovered")
"""


def test_pip_install_and_discover(tmp_path: Path) -> None:
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-cache-dir",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        cwd=tmp_path,  # keep build artefacts out of the source tree
        timeout=120,
    )
    assert (target / "marathon_constraint_inset" / "plugin.py").exists()
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "IN_SET discovered"
