"""CI must not pass with contract tests silently skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

TESTS = Path(__file__).parent


def _run(env_ci: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["MESOS_PROTOS_DIR"] = str(tmp_path / "no-protos-here")
    if env_ci is not None:
        env["CI"] = env_ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
         f"{TESTS / 'test_contract.py'}::test_strict_parsing_rejects_what_mesos_rejects"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_missing_protos_skip_locally_but_fail_in_ci(tmp_path: Path) -> None:
    local = _run(None, tmp_path)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = _run("true", tmp_path)
    assert ci.returncode == 1 and ("1 error" in ci.stdout or "1 failed" in ci.stdout), ci.stdout
    assert "CI=true" in ci.stdout
