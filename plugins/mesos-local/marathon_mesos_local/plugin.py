"""Hook implementations: ``marathon --master local`` starts an embedded Mesos cluster.

Only hookimpls live here; the cluster itself is :mod:`marathon_mesos_local.cluster`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import trio

from marathon_core import hookimpl
from marathon_core.contracts.containerizers import DEFAULT_CONTAINERIZERS, DEFAULT_DOCKER_SOCKET
from marathon_core.errors import ConfigError
from marathon_mesos_local.cli import framework_credentials, parse_duration
from marathon_mesos_local.cluster import Cluster, ClusterOptions
from marathon_mesos_local.master.registry import Registry, RegistryError
from marathon_mesos_local.resources import DEFAULT_RESOURCES, ResourceError

if TYPE_CHECKING:
    from marathon_core.config import Config, OptionParser
    from marathon_core.contracts.services import MasterService

#: The ``--master`` value this plugin serves.
LOCAL = "local"


@hookimpl
def marathon_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--local_agents", default=1, type=int, help="Agents of the embedded Mesos (--master local)"
    )
    parser.addoption(
        "--local_agent_resources",
        default=DEFAULT_RESOURCES,
        help="Resources of each embedded agent, in Mesos's syntax",
    )
    parser.addoption(
        "--local_agent_attributes",
        default="",
        help="Attributes of each embedded agent, in Mesos's syntax (rack:r1;zone:a)",
    )
    parser.addoption(
        "--local_master_port", default=5050, type=int, help="Port of the embedded master (0: any)"
    )
    parser.addoption(
        "--local_agent_port", default=5051, type=int, help="Port of each embedded agent (0: any)"
    )
    parser.addoption(
        "--local_simulated_agents",
        default=0,
        type=int,
        help="In-process simulated agents of the embedded Mesos (tasks never run a process)",
    )
    parser.addoption(
        "--local_agent_ping_timeout",
        default=15.0,
        type=parse_duration,
        help="Embedded master's --agent_ping_timeout (15secs)",
    )
    parser.addoption(
        "--local_max_agent_ping_timeouts",
        default=5,
        type=int,
        help="Embedded master's --max_agent_ping_timeouts (5)",
    )
    parser.addoption(
        "--local_offer_timeout",
        default=None,
        type=parse_duration,
        help="Embedded master's --offer_timeout (default: offers never time out)",
    )
    parser.addoption(
        "--local_containerizers",
        default=",".join(sorted(DEFAULT_CONTAINERIZERS)),
        help="Embedded agents' --containerizers: enabled ones, comma-separated "
        "(mesos, docker; default mesos)",
    )
    parser.addoption(
        "--local_docker_socket",
        default=DEFAULT_DOCKER_SOCKET,
        help=f"Embedded agents' --docker_socket ({DEFAULT_DOCKER_SOCKET})",
    )
    parser.addoption(
        "--local_authenticate_frameworks",
        flag=True,
        help="Embedded master's --authenticate_http_frameworks: marathon must authenticate "
        "(--mesos_authentication, --mesos_authentication_principal, "
        "--mesos_authentication_secret_file)",
    )
    parser.addoption(
        "--local_credentials",
        default=None,
        help="Embedded master's --credentials file (JSON or 'principal secret' lines)",
    )
    parser.addoption(
        "--local_agent_reregister_timeout",
        default=None,
        type=parse_duration,
        help="Embedded master's --agent_reregister_timeout: how long it waits, after a "
        "restart on the same --state_dir, for the agents of its registry (default: "
        "agent ping timeout x max ping timeouts, as for any lost agent)",
    )


def cluster_options(config: Config) -> ClusterOptions:
    """The embedded cluster's shape from Marathon's configuration.

    The re-registration timeout defaults to the time that marks a silent agent lost,
    not Mesos's 10 minutes: the embedded agents die with the process that owns them,
    so after a crash of ``marathon`` its agents are machines that lost power and
    come back under new ids, and their tasks must be replaced as promptly.
    """
    reregister_timeout = config.option("local_agent_reregister_timeout")
    if reregister_timeout is None:
        reregister_timeout = config.option("local_agent_ping_timeout") * config.option(
            "local_max_agent_ping_timeouts"
        )
    return ClusterOptions(
        port=config.option("local_master_port"),
        agents=config.option("local_agents"),
        agent_resources=config.option("local_agent_resources"),
        agent_attributes=config.option("local_agent_attributes"),
        agent_port=config.option("local_agent_port"),
        work_dir=Path(config.state_dir) / "mesos-local",
        simulated_agents=config.option("local_simulated_agents"),
        agent_ping_timeout=config.option("local_agent_ping_timeout"),
        max_agent_ping_timeouts=config.option("local_max_agent_ping_timeouts"),
        offer_timeout=config.option("local_offer_timeout"),
        agent_reregister_timeout=reregister_timeout,
        containerizers=config.option("local_containerizers"),
        docker_socket=config.option("local_docker_socket"),
        framework_credentials=framework_credentials(
            config.option("local_authenticate_frameworks"), config.option("local_credentials")
        ),
    )


@hookimpl
def marathon_configure(config: Config) -> None:
    if config.master != LOCAL:
        return
    try:
        options = cluster_options(config)
        options.check()
        Registry.open(options.master_dir)
    except (ResourceError, ValueError, RegistryError) as exc:  # CredentialsError too
        raise ConfigError(f"embedded Mesos: {exc}") from None


@hookimpl
def marathon_mesos_master(url: str, config: Config) -> MasterService | None:
    if url != LOCAL:
        return None
    options = cluster_options(config)

    async def local_master(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        await Cluster(options).run(task_status=task_status)

    return local_master
