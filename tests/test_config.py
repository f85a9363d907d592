"""Marathon's flags: names, defaults, environment variables and plugin options."""

from __future__ import annotations

import pytest

from marathon_core.config import OptionParser, parse_config
from marathon_core.errors import ConfigError


def test_marathon_defaults() -> None:
    config = parse_config([], environ={})
    assert config.master == "local"
    assert config.http_port == 8080
    assert config.framework_name == "marathon"
    assert config.failover_timeout == 604800
    assert config.mesos_role == "*"
    assert config.task_launch_timeout == 300000
    assert config.reconciliation_interval == 600000
    assert config.zk is None
    assert config.zk_session_timeout == 10000
    assert config.checkpoint is True
    assert (config.local_port_min, config.local_port_max) == (10000, 20000)
    assert config.max_concurrent_marathon_health_checks == 256  # Marathon 1.5.15+
    assert config.health_kill_fraction_per_app == 0.1


def test_environment_fills_in_and_the_command_line_wins() -> None:
    environ = {"MARATHON_HTTP_PORT": "9090", "MARATHON_MASTER": "http://m:5050"}
    config = parse_config(["--http_port", "7070"], environ=environ)
    assert config.http_port == 7070
    assert config.master == "http://m:5050"


@pytest.mark.parametrize(
    ("environ", "args", "expected"),
    [
        ({}, [], True),
        ({}, ["--disable_checkpoint"], False),
        ({"MARATHON_DISABLE_CHECKPOINT": ""}, [], False),  # empty value enables, as in Marathon
        ({"MARATHON_DISABLE_CHECKPOINT": ""}, ["--checkpoint"], True),
        ({"MARATHON_CHECKPOINT": "false"}, [], False),
    ],
)
def test_negatable_boolean_flags(environ: dict[str, str], args: list[str], expected: bool) -> None:
    assert parse_config(args, environ=environ).checkpoint is expected


def test_enabled_features_are_a_set() -> None:
    config = parse_config(["--enable_features", "secrets, gpu_resources"], environ={})
    assert config.features == {"secrets", "gpu_resources"}


def test_bad_values_are_config_errors_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match="--http_port"):
        parse_config(["--http_port", "eighty"], environ={})
    with pytest.raises(ConfigError, match="MARATHON_HTTP_PORT"):
        parse_config([], environ={"MARATHON_HTTP_PORT": "eighty"})
    with pytest.raises(ConfigError, match="unrecognized"):
        parse_config(["--no_such_flag"], environ={})


def test_plugin_options_come_from_flags_and_environment() -> None:
    def addoption(parser: OptionParser) -> None:
        parser.addoption("--local_agents", type=int, default=1, help="agents to start")
        parser.addoption("--local_verbose", flag=True, help="chatty")

    config = parse_config(
        ["--local_agents", "3"], addoption_hook=addoption, environ={"MARATHON_LOCAL_VERBOSE": ""}
    )
    assert config.option("--local_agents") == 3
    assert config.option("local_verbose") is True
    assert parse_config([], addoption_hook=addoption, environ={}).option("local_agents") == 1


def test_plugin_option_names_are_checked() -> None:
    def addoption(parser: OptionParser) -> None:
        parser.addoption("-x")

    with pytest.raises(ConfigError, match="--lower_snake_case"):
        parse_config([], addoption_hook=addoption, environ={})
