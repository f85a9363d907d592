"""Hook specifications: the contract between marathon-core and its plugins.

Every hook is named ``marathon_*`` and is called with keyword arguments only, so an
implementation may accept a subset of the arguments and a spec can grow new arguments
without breaking old plugins. Hooks are synchronous and cheap: pluggy never awaits.
Where work is asynchronous a hook returns an async callable and the core awaits it in
its own nursery.

Collecting hooks that return mappings (operators, runtimes, containerizers, health
check protocols, services) are merged by the core; two plugins claiming one key is a
startup error naming both distributions.

Plugins mark implementations with :data:`marathon_core.hookimpl` and register them in
the ``marathon`` entry-point group (see ``docs/writing_plugins.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from marathon_core import PROJECT_NAME

if TYPE_CHECKING:
    from marathon_core.config import Config, OptionParser
    from marathon_core.contracts.auth import Action, HttpRequest, Identity, Resource
    from marathon_core.contracts.containerizers import AgentSettings, Containerizer
    from marathon_core.contracts.health import HealthCheckProtocol
    from marathon_core.contracts.placement import ConstraintOperator
    from marathon_core.contracts.runtimes import ContainerRuntime
    from marathon_core.contracts.services import MasterService, Service, ServiceContext
    from marathon_core.model.app import AppDefinition
    from marathon_core.model.instance import Instance

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# -------------------------------------------------------------------------
# Options and startup
# -------------------------------------------------------------------------


class HookspecAdder(Protocol):
    """What ``marathon_addhooks`` gets of the plugin manager."""

    def add_hookspecs(self, module_or_class: object) -> None: ...


@hookspec(historic=True)
def marathon_addhooks(pluginmanager: HookspecAdder) -> None:
    """Add hook specifications of a plugin's own, for other plugins to implement.

    For a plugin that others extend (the REST frontend takes routes from other
    plugins): ``pluginmanager.add_hookspecs(module)`` with a module of ``marathon_*``
    specs marked by ``pluggy.HookspecMarker("marathon")``. Called as each plugin
    registers, before the check for unknown hooks, so implementations of the added
    hooks load like any other. The plugin that added a hook calls it with
    ``ServiceContext.call_extension``.

    :param pluginmanager: Has ``add_hookspecs(module)``; nothing else of the plugin
        manager is for plugins.

    .. versionadded:: 0.1
    """


@hookspec(historic=True)
def marathon_addoption(parser: OptionParser) -> None:
    """Register command line options for ``marathon``.

    Every option can also be given as an environment variable ``MARATHON_<NAME>``
    (upper case), as Marathon's own flags can; the command line wins.

    :param parser: Call ``parser.addoption("--my_flag", default=..., help=...)``.
        Values end up in :attr:`Config.plugin_options` under the option's name.

    Historic, so a plugin registered late still adds its options.

    .. versionadded:: 0.1
    """


class HookEnabler(Protocol):
    """What ``marathon_configure`` gets of the plugin host (``PluginHost``)."""

    def enable(self, owner: str, hooks: object) -> None: ...


@hookspec
def marathon_configure(config: Config, plugins: HookEnabler) -> None:
    """Check or react to the final configuration before any service starts.

    Raise :class:`marathon_core.errors.ConfigError` to refuse an unusable
    combination of options; its message is shown to the user as one line.

    A plugin whose hooks must only act when its options are given (authentication:
    an installed but unconfigured auth plugin must not count as one) keeps them on an
    object it registers here with ``plugins.enable(owner, hooks)``.

    :param config: The parsed configuration (core flags and plugin options).
    :param plugins: The plugin host; ``enable(owner, hooks)`` registers ``hooks``.

    .. versionadded:: 0.1
    """


@hookspec
def marathon_services(ctx: ServiceContext) -> Mapping[str, Service] | None:
    """Return long-running services to start in the core's root nursery.

    Services run whether or not this process is the leader: API frontends (a standby
    still serves and proxies), metrics exporters. Each is an async callable
    ``service(ctx, task_status=...)`` that calls ``task_status.started()`` once it
    is ready and runs until cancelled. The core starts them in name order after the
    state store is open, and stops them on shutdown by cancellation.

    :param ctx: What services may use: config, plugin host, state store, leadership.
    :returns: A mapping of unique service name to service, or None.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def marathon_mesos_master(url: str, config: Config) -> MasterService | None:
    """Turn a ``--master`` value into something that yields a Mesos master URL.

    Stops at first non-None result. Implementations return None for values they do
    not serve, so the next plugin is asked; the core's built-in answers ``http://``,
    ``https://``, ``host:port`` and ``zk://`` values and is asked last. ``local`` is served by
    the ``marathon-mesos-local`` plugin, which starts an embedded master and agents.

    :param url: The ``--master`` value as the user gave it.
    :param config: The whole configuration.
    :returns: An async callable ``master(task_status=...)`` that starts whatever it
        needs, calls ``task_status.started(master_url)`` with the ``http(s)://`` URL of
        the master (or a ``zk://`` URL of the masters' ZooKeeper group, which the core
        looks up before every subscription), and runs until cancelled
        (stopping what it started); or None.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------
# Placement, runtimes and health
# -------------------------------------------------------------------------


@hookspec
def marathon_constraint_operators() -> Mapping[str, ConstraintOperator] | None:
    """Return placement-constraint operators by name (``UNIQUE``, ``MAX_PER``, ...).

    Names are upper case; the core upper-cases the operator of an app's constraint
    before the lookup, as Marathon does. An operator validates its value at API time
    and filters offers at launch time (:mod:`marathon_core.contracts.placement`). An app naming
    an operator no plugin provides is rejected with a 422 at ``/constraints(i)``.

    :returns: A mapping of operator name to operator, or None.

    .. versionadded:: 0.1
    """


@hookspec
def marathon_container_runtimes() -> Mapping[str, ContainerRuntime] | None:
    """Return scheduler-side container runtimes by ``container.type`` (``DOCKER``, ``MESOS``).

    A runtime checks the runtime-specific rules of an app at API time and builds the
    Mesos ``TaskInfo`` for it at launch time. An app whose container type no plugin
    provides is rejected with a 422 at ``/container/type``.

    :returns: A mapping of container type to runtime, or None.

    .. versionadded:: 0.1
    """


@hookspec
def marathon_agent_containerizers(settings: AgentSettings) -> Mapping[str, Containerizer] | None:
    """Return agent-side containerizers by container type, for the embedded agents.

    The embedded Mesos agents (``marathon-mesos-local``) run a task through the
    containerizer of its container type: launch, watch, limit and kill it. Plain
    command tasks (no container) use the agent's own command containerizer. The agent
    uses only those its ``--containerizers`` flag enables (``settings.containerizers``,
    the container type in lower case); at start it calls ``remove_orphans`` on each.

    :param settings: The asking agent's flags
        (:class:`~marathon_core.contracts.containerizers.AgentSettings`: work dir,
        enabled containerizers, Docker socket). An implementation may leave it out.
    :returns: A mapping of container type to containerizer, or None.

    .. versionadded:: 0.1
    """


@hookspec
def marathon_health_check_protocols() -> Mapping[str, HealthCheckProtocol] | None:
    """Return health-check protocols by name (``HTTP``, ``TCP``, ``COMMAND``, ``MESOS_HTTP``, ...).

    A protocol validates an app's health check at API time
    (:class:`~marathon_core.contracts.health.HealthCheckProtocol`). A protocol the
    scheduler executes itself (Marathon's HTTP, HTTPS, TCP) also has a ``checker``
    (:class:`~marathon_core.contracts.health.HealthChecker`) whose async
    ``probe(check, host=..., port=..., timeout=...)`` returns a ``ProbeResult``;
    the leader then probes every Running task of apps using it and kills tasks that
    keep failing. Protocols whose ``checker`` is None run on the Mesos agent. An app naming a
    protocol no plugin provides is rejected with a 422 at ``/healthChecks(i)/protocol``.

    :returns: A mapping of protocol name to protocol, or None.

    .. versionadded:: 0.1
    .. versionchanged:: 0.1
        Protocols may have ``probe``: the core runs them (``marathon_core.leader.health``).
    """


@hookspec
def marathon_prepare_task(
    app: AppDefinition, instance: Instance, task_info: dict[str, Any]
) -> None:
    """Adjust a Mesos ``TaskInfo`` (JSON form) in place just before it is launched.

    For labels, environment variables, secrets or a custom executor. Called for every
    launch, after the container runtime built the TaskInfo; keep it fast.

    :param app: The :class:`~marathon_core.model.AppDefinition` being launched.
    :param instance: The instance the task belongs to.
    :param task_info: The TaskInfo as a JSON object of the Mesos v1 API; mutate it.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------
# Events
# -------------------------------------------------------------------------


@hookspec
def marathon_event(event: Mapping[str, Any]) -> None:
    """Observe every event the core publishes, in Marathon's wire form.

    Called on the event bus's task for each event (``eventType``, ``timestamp`` and
    the type's fields, as ``/v2/events`` sends them). Must not block: hand slow work
    to a service of your own through a bounded channel.

    :param event: The event as a JSON object; do not mutate it.

    .. versionadded:: 0.1
    """


# -------------------------------------------------------------------------
# API authentication and authorization
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def marathon_authenticate(request: HttpRequest) -> Identity | None:
    """Identify the caller of an API request.

    Stops at first non-None result. With no authentication plugin installed every
    request gets the anonymous identity (allow-all, as Marathon without plugins).
    marathon-rest calls it in a worker thread, several requests at once, so that a
    slow check (a password hash) never stalls the event loop: implementations must be
    thread-safe and must not call into trio.

    :param request: A framework-neutral view of the HTTP request.
    :returns: The caller's :class:`~marathon_core.contracts.auth.Identity`, an identity with
        ``authenticated=False`` to reject the request (401), or None to let the next
        plugin decide. To answer with a challenge or a lockout, raise a
        :class:`~marathon_core.errors.UserError` with ``headers`` (a 401 with
        ``WWW-Authenticate``, a 429 with ``Retry-After``); frontends send them.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def marathon_authorize(identity: Identity, action: Action, resource: Resource) -> bool | None:
    """Decide whether ``identity`` may perform ``action`` on ``resource``.

    Stops at first non-None result. With no authorization plugin installed
    everything is allowed.

    :param identity: Who asks (from :func:`marathon_authenticate`).
    :param action: One of Marathon's actions (``CreateRunSpec``, ``ViewResource``, ...).
    :param resource: The app or group path, or a system resource (``Leader``, ``Events``, ...).
    :returns: True to allow, False to deny (403), None to let the next plugin decide.

    .. versionadded:: 0.1
    """
