from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from marathon_ctl.cli import cli

#: Fixed width and no colour, so output can be compared with goldens.
TEST_ENV: dict[str, str | None] = {
    "COLUMNS": "120",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "MARATHON_CTL_CONFIG": "/nonexistent/marathon-ctl.toml",
    "MARATHON_URL": None,
    "MARATHON_USER": None,
    "MARATHON_TOKEN": None,
    "MESOS_MASTER_URL": None,
}

Ctl = Callable[..., Result]


def run_ctl(*args: str, env: dict[str, str] | None = None) -> Result:
    """``marathon-ctl args`` in this process; stdin and stdout are not terminals."""
    return CliRunner().invoke(cli, list(args), env={**TEST_ENV, **(env or {})})


@pytest.fixture
def ctl() -> Ctl:
    return run_ctl


@pytest.fixture
def golden_dir() -> Path:
    return Path(__file__).with_name("golden")
