"""The plugin host: loads plugins, checks them, and calls hooks through a typed facade.

Plugins come from two places: the core's own built-in modules (registered by import,
like pytest's default plugins) and the ``marathon`` entry-point group of every
installed distribution. Loading is all or nothing: if any plugin fails to import or
breaks the contract, :func:`get_plugin_host` raises one :class:`PluginError` with a
line per broken plugin naming its distribution, so the server never runs with a
half-loaded plugin set.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from marathon_core import PROJECT_NAME, __version__, hookspecs
from marathon_core.contracts.auth import ANONYMOUS, Action, HttpRequest, Identity, Resource
from marathon_core.errors import PluginConflictError, PluginError

if TYPE_CHECKING:
    from marathon_core.config import Config, OptionParser
    from marathon_core.contracts.containerizers import AgentSettings, Containerizer
    from marathon_core.contracts.health import HealthCheckProtocol
    from marathon_core.contracts.placement import ConstraintOperator
    from marathon_core.contracts.runtimes import ContainerRuntime
    from marathon_core.contracts.services import MasterService, Service, ServiceContext
    from marathon_core.model.app import AppDefinition
    from marathon_core.model.instance import Instance

__all__ = ["BUILTIN_PLUGINS", "PluginHost", "PluginInfo", "get_plugin_host"]

#: The core's own plugins: name -> module. They implement hooks like anyone else, but
#: are imported from this table; the ``marathon`` entry-point group is only for plugin
#: distributions (marathon-core itself declares no entry point in it).
BUILTIN_PLUGINS: Mapping[str, str] = {
    "builtin-masters": "marathon_core.masters",
}

#: Environment variable with comma-separated plugin names not to load.
DISABLE_ENV = "MARATHON_DISABLE_PLUGINS"


@attrs.frozen
class PluginInfo:
    """One loaded plugin as ``marathon plugins`` lists it."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]


class PluginHost:
    """A loaded, checked plugin set with one typed method per hook."""

    def __init__(
        self, manager: pluggy.PluginManager, sources: Mapping[str, tuple[str, str]]
    ) -> None:
        self.manager = manager
        self._sources = dict(sources)  # plugin name -> (distribution, version)

    # -- listing ----------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every loaded plugin with its distribution, version and implemented hooks."""
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:  # blocked
                continue
            distribution, version = self._sources.get(name, ("?", "?"))
            callers = self.manager.get_hookcallers(plugin) or []
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=distribution,
                    version=version,
                    builtin=name in BUILTIN_PLUGINS,
                    hooks=tuple(sorted(c.name for c in callers)),
                )
            )
        return sorted(infos, key=lambda i: (not i.builtin, i.name))

    # -- options and startup ----------------------------------------------

    def addoption(self, parser: OptionParser) -> None:
        self.manager.hook.marathon_addoption.call_historic(kwargs={"parser": parser})

    def configure(self, config: Config) -> None:
        self.manager.hook.marathon_configure(config=config, plugins=self)

    def enable(self, owner: str, hooks: object) -> None:
        """Register ``hooks`` (an object with hook implementations) for plugin ``owner``.

        For hooks that act only once the owner's options are given: until then the
        host does not see them (``has_authenticator`` stays false). Enabling again
        replaces the earlier object.
        """
        name = f"{owner}.enabled"
        earlier = self.manager.get_plugin(name)
        if earlier is not None:
            self.manager.unregister(earlier, name=name)
        self._sources[name] = self._sources.get(owner, ("?", "?"))
        self.manager.register(hooks, name=name)

    def services(self, ctx: ServiceContext) -> dict[str, Service]:
        return self._merge("service", "marathon_services", ctx=ctx)

    def mesos_master(self, url: str, config: Config) -> MasterService | None:
        result: MasterService | None = self.manager.hook.marathon_mesos_master(
            url=url, config=config
        )
        return result

    # -- registries ---------------------------------------------------------

    def constraint_operators(self) -> dict[str, ConstraintOperator]:
        return self._merge(
            "constraint operator", "marathon_constraint_operators", members=("validate", "filter")
        )

    def container_runtimes(self) -> dict[str, ContainerRuntime]:
        return self._merge(
            "container runtime",
            "marathon_container_runtimes",
            members=("validate", "build_task_info"),
        )

    def agent_containerizers(self, settings: AgentSettings) -> dict[str, Containerizer]:
        return self._merge(
            "containerizer",
            "marathon_agent_containerizers",
            members=("launch", "recover", "remove_orphans"),
            settings=settings,
        )

    def health_check_protocols(self) -> dict[str, HealthCheckProtocol]:
        return self._merge(
            "health check protocol",
            "marathon_health_check_protocols",
            members=("validate", "checker"),
        )

    # -- launch, events, auth ---------------------------------------------

    def prepare_task(
        self, app: AppDefinition, instance: Instance, task_info: dict[str, Any]
    ) -> None:
        self.manager.hook.marathon_prepare_task(app=app, instance=instance, task_info=task_info)

    def event(self, event: Mapping[str, Any]) -> None:
        self.manager.hook.marathon_event(event=event)

    def authenticate(self, request: HttpRequest) -> Identity:
        """The caller's identity; anonymous when no plugin decides (allow-all)."""
        identity: Identity | None = self.manager.hook.marathon_authenticate(request=request)
        return ANONYMOUS if identity is None else identity

    @property
    def has_authenticator(self) -> bool:
        """Whether any plugin implements ``marathon_authenticate`` (else everyone is anonymous)."""
        return bool(self.manager.hook.marathon_authenticate.get_hookimpls())

    @property
    def has_authorizer(self) -> bool:
        """Whether any plugin implements ``marathon_authorize`` (else everything is allowed)."""
        return bool(self.manager.hook.marathon_authorize.get_hookimpls())

    def authorize(self, identity: Identity, action: Action, resource: Resource) -> bool:
        """Whether the action is allowed; True when no plugin decides (allow-all)."""
        allowed: bool | None = self.manager.hook.marathon_authorize(
            identity=identity, action=action, resource=resource
        )
        return True if allowed is None else allowed

    def call_extension(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """The results of a hook a plugin added through ``marathon_addhooks``.

        :raises PluginError: if no loaded plugin specified ``hook_name``.
        """
        caller = getattr(self.manager.hook, hook_name, None)
        if caller is None or caller.spec is None:
            raise PluginError(f"no plugin specifies the hook {hook_name!r}")
        results: list[Any] = caller(**kwargs)
        return results

    # -- internals ---------------------------------------------------------

    def _merge(
        self, registry: str, hook_name: str, *, members: tuple[str, ...] = (), **kwargs: Any
    ) -> dict[str, Any]:
        """Call a collecting hook per plugin and merge the mappings.

        A duplicate key is fatal, and so is an object without the ``members`` of its
        contract: the server refuses to start rather than fail at the first launch or
        probe that needs the missing one.
        """
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        caller = getattr(self.manager.hook, hook_name)
        # pluggy calls implementations last-registered-first; keep that order.
        for impl in reversed(caller.get_hookimpls()):
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            if not result:
                continue
            who = self._describe(impl.plugin_name)
            for key, value in result.items():
                if key in merged:
                    raise PluginConflictError(registry, key, owner[key], who)
                missing = [m for m in members if not hasattr(value, m)]
                if missing:
                    raise PluginError(
                        f"{registry} {key!r} of {who} lacks {', '.join(missing)} "
                        f"(see marathon_core.contracts)"
                    )
                merged[key] = value
                owner[key] = who
        return merged

    def _describe(self, plugin_name: str) -> str:
        distribution, _ = self._sources.get(plugin_name, (plugin_name, "?"))
        return f"{distribution} (plugin {plugin_name!r})"


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.hook.marathon_addhooks.call_historic(kwargs={"pluginmanager": manager})
    return manager


def _entry_points() -> Iterable[tuple[importlib.metadata.EntryPoint, str, str]]:
    seen: set[tuple[str, str]] = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            # A distribution can be visible twice on sys.path (editable + site); load once.
            if ep.group != PROJECT_NAME or (name, ep.name) in seen:
                continue
            seen.add((name, ep.name))
            yield ep, name, dist.version


def get_plugin_host(
    *,
    load_entrypoints: bool = True,
    blocked: Iterable[str] = (),
    extra: Mapping[str, ModuleType | object] | None = None,
) -> PluginHost:
    """Load the built-ins, the installed plugins and ``extra`` (tests), and check them.

    :param blocked: plugin names (entry-point names) not to load.
    :raises PluginError: if any plugin failed; the message has one line per failure.
    """
    manager = _new_manager()
    sources: dict[str, tuple[str, str]] = {}
    failures: list[str] = []
    blocked = set(blocked)
    for name in blocked:
        manager.set_blocked(name)

    def register(name: str, plugin: object, distribution: str, version: str) -> None:
        try:
            manager.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            failures.append(f"plugin {name!r} from {distribution} {version}: {exc}")
            return
        sources[name] = (distribution, version)

    for name, module_name in BUILTIN_PLUGINS.items():
        if name not in blocked:
            register(name, importlib.import_module(module_name), "marathon-core", __version__)
    if load_entrypoints:
        for ep, distribution, version in _entry_points():
            if ep.name in blocked:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}".strip()
                failures.append(
                    f"plugin {ep.name!r} from {distribution} {version} failed to load: {reason}"
                )
                continue
            register(ep.name, plugin, distribution, version)
    for name, plugin in (extra or {}).items():
        register(name, plugin, getattr(plugin, "__name__", name), "(test)")
    _check_pending(manager, sources, failures)
    if failures:
        raise PluginError("\n".join(failures))
    return PluginHost(manager, sources)


def _check_pending(
    manager: pluggy.PluginManager, sources: Mapping[str, tuple[str, str]], failures: list[str]
) -> None:
    """Report ``marathon_*`` implementations that match no hook (typos), per plugin;
    ``optionalhook`` ones implement another plugin's hook, which may not be loaded."""
    for name, plugin in manager.list_name_plugin():
        for caller in manager.get_hookcallers(plugin) or []:
            impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
            if caller.spec is None and not all(i.optionalhook for i in impls):
                distribution, version = sources.get(name, ("?", "?"))
                failures.append(
                    f"plugin {name!r} from {distribution} {version}: unknown hook {caller.name!r}"
                )
