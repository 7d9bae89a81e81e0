"""The plugin manager: finds agent and env plugins through the ``nlp_envs`` entry-point group.

The built-in agents are declared as entry points of the ``nlp-envs`` distribution (see
``pyproject.toml``), so one path finds them and third-party ones. Loading runs when an agent or the
list of plugins is first needed (and, for env plugins, on ``import nlp_envs``); it reads
``NLP_ENVS_BLOCK_PLUGINS`` (comma-separated entry-point names) at that moment. A plugin that fails to
import or to register is recorded with its error and skipped; the others still load. Two plugins
that register the same agent name make that name unusable, with an error naming both
distributions (the host never renames silently).
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from agents import hookspecs

BLOCK_VARIABLE = "NLP_ENVS_BLOCK_PLUGINS"
"""Environment variable: comma-separated entry-point names that are not loaded."""


class PluginWarning(UserWarning):
    """A plugin failed to load or to register; the others were loaded."""


class AgentConflictError(ValueError):
    """Two plugins registered the same agent name."""


@dataclass(frozen=True)
class AgentEntry:
    """One registered agent.

    Attributes:
        name: the agent's name, as passed to ``agents.make``.
        factory: ``factory(env, *, seed=0, device="auto", **hyperparams)``.
        plugin: the entry-point name of the plugin that registered it.
        distribution: the distribution that provides the plugin.
        version: that distribution's version.
    """

    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str


@dataclass
class PluginStatus:
    """What happened when one plugin was loaded.

    Attributes:
        name: the entry-point name (what ``NLP_ENVS_BLOCK_PLUGINS`` lists).
        distribution: the distribution that declares the entry point.
        version: that distribution's version.
        status: ``"loaded"``, ``"blocked"`` or ``"failed"``.
        error: why it failed (the exception, one line), else None.
        agents: the agent names it registered.
        envs: the env ids it registered.
    """

    name: str
    distribution: str
    version: str
    status: str = "loaded"
    error: str | None = None
    agents: list[str] = field(default_factory=list)
    envs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PluginRegistry:
    """The outcome of loading every plugin once: agents, env specs, per-plugin status.

    Attributes:
        manager: the pluggy manager holding the loaded plugins.
        plugins: one :class:`PluginStatus` per entry point, in loading order.
        agents: usable agents by name.
        conflicts: agent names registered by more than one plugin, with the error to raise.
    """

    manager: pluggy.PluginManager
    plugins: list[PluginStatus]
    agents: dict[str, AgentEntry]
    conflicts: dict[str, AgentConflictError]

    def failures(self) -> list[PluginStatus]:
        """The plugins that failed to import or to register."""
        return [plugin for plugin in self.plugins if plugin.status == "failed"]

    def env_specs(self) -> list[tuple[PluginStatus, dict[str, Any]]]:
        """Every env spec registered through ``register_envs``, with its plugin."""
        return [(plugin, spec) for plugin in self.plugins for spec in plugin.envs]


def new_plugin_manager() -> pluggy.PluginManager:
    """A fresh pluggy manager for the ``nlp_envs`` project with our hook specs (no plugins yet)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def blocked_plugins(value: str | None = None) -> frozenset[str]:
    """The entry-point names in ``NLP_ENVS_BLOCK_PLUGINS`` (or in ``value``), read now."""
    text = os.environ.get(BLOCK_VARIABLE, "") if value is None else value
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def entry_points() -> list[metadata.EntryPoint]:
    """The installed entry points of group ``nlp_envs``, sorted by (distribution, name)."""
    points = metadata.entry_points(group=hookspecs.PROJECT_NAME)
    return sorted(points, key=lambda point: (_distribution(point)[0], point.name))


def _distribution(point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(point, "dist", None)
    if dist is None:
        return "(unknown distribution)", "?"
    return dist.metadata["Name"] or dist.name, dist.version or "?"


def _one_line(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip().replace("\n", " ")


def load_plugins(
    points: Iterable[metadata.EntryPoint] | None = None, *, block: Iterable[str] | None = None
) -> PluginRegistry:
    """Load plugins into a fresh manager and collect what they register.

    Args:
        points: the entry points to load; by default every installed one of group ``nlp_envs``.
        block: entry-point names to skip; by default ``NLP_ENVS_BLOCK_PLUGINS``, read now.

    Returns:
        A :class:`PluginRegistry`. Nothing is registered with Gymnasium here (see
        :func:`register_plugin_envs`).
    """
    manager = new_plugin_manager()
    blocked = blocked_plugins() if block is None else frozenset(block)
    statuses: list[PluginStatus] = []
    by_name: dict[str, PluginStatus] = {}
    for point in entry_points() if points is None else list(points):
        distribution, version = _distribution(point)
        status = PluginStatus(point.name, distribution, version)
        statuses.append(status)
        if point.name in blocked:
            status.status = "blocked"
            continue
        if point.name in by_name:
            status.status, status.error = (
                "failed",
                (
                    f"entry-point name {point.name!r} is also used by {by_name[point.name].distribution}; "
                    "rename one of the entry points"
                ),
            )
            continue
        try:
            manager.register(point.load(), name=point.name)
        except Exception as error:  # noqa: BLE001 - any import error of a plugin is reported, not fatal
            status.status, status.error = "failed", f"import failed: {_one_line(error)}"
            continue
        by_name[point.name] = status

    if points is None and not any(status.distribution == "nlp-envs" for status in statuses):
        statuses.insert(0, _missing_builtins())
    agents: dict[str, AgentEntry] = {}
    owners: dict[str, list[AgentEntry]] = {}
    for impl in manager.hook.register_agents.get_hookimpls():  # registration order
        status = by_name[impl.plugin_name]
        added: list[AgentEntry] = []

        def register(
            name: str, factory: Callable[..., Any], _status: PluginStatus = status, _added: list[AgentEntry] = added
        ) -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"register(name, factory): name must be a non-empty string, got {name!r}")
            if not callable(factory):
                raise TypeError(f"register({name!r}, factory): factory must be callable, got {factory!r}")
            _added.append(AgentEntry(name, factory, _status.name, _status.distribution, _status.version))

        if _call(impl, status, register=register):
            for entry in added:
                owners.setdefault(entry.name, []).append(entry)
                status.agents.append(entry.name)

    conflicts: dict[str, AgentConflictError] = {}
    for name, entries in owners.items():
        if len(entries) == 1:
            agents[name] = entries[0]
        else:
            who = " and ".join(f"{e.distribution} {e.version} (plugin {e.plugin!r})" for e in entries)
            conflicts[name] = AgentConflictError(
                f"agent name {name!r} is registered by {who}; uninstall one of them, or block one "
                f"with {BLOCK_VARIABLE}={entries[-1].plugin}."
            )

    for impl in manager.hook.register_envs.get_hookimpls():
        status = by_name[impl.plugin_name]
        specs: list[dict[str, Any]] = []

        def register_env(_specs: list[dict[str, Any]] = specs, **spec: Any) -> None:
            if "id" not in spec or "entry_point" not in spec:
                raise TypeError(f"register(**spec) needs at least id= and entry_point=, got keys {sorted(spec)}")
            _specs.append(spec)

        if _call(impl, status, register=register_env):
            status.envs.extend(specs)
    return PluginRegistry(manager, statuses, agents, conflicts)


def _missing_builtins() -> PluginStatus:
    """A failed status explaining why the built-in agents were not found."""
    try:
        dist = metadata.distribution("nlp-envs")
        where = str(getattr(dist, "_path", "?"))
        version = dist.version
    except metadata.PackageNotFoundError:
        where, version = "nowhere (nlp-envs is not installed)", "?"
    return PluginStatus(
        "(built-ins)",
        "nlp-envs",
        version,
        status="failed",
        error=(
            f"the nlp-envs metadata found at {where} declares no 'nlp_envs' entry points, so the built-in "
            "agents are missing; reinstall with `pip install -e .` (a stale nlp_envs.egg-info folder in the "
            "working directory can shadow the installed metadata: delete it)"
        ),
    )


def _call(impl: Any, status: PluginStatus, **kwargs: Any) -> bool:
    """Call one hook implementation; on error mark its plugin failed and return False."""
    try:
        impl.function(*[kwargs[name] for name in impl.argnames])
    except Exception as error:  # noqa: BLE001 - a plugin's bug is reported, not fatal
        status.status = "failed"
        status.error = f"{impl.function.__name__} failed: {_one_line(error)}"
        return False
    return True


_CACHE: dict[str, Any] = {}


def registry() -> PluginRegistry:
    """The process-wide registry, loaded on first use and again when ``NLP_ENVS_BLOCK_PLUGINS`` changes."""
    key = os.environ.get(BLOCK_VARIABLE, "")
    if _CACHE.get("key") != key or "registry" not in _CACHE:
        _CACHE["registry"] = load_plugins()
        _CACHE["key"] = key
    return _CACHE["registry"]


def reset() -> None:
    """Forget the loaded plugins (tests; after installing a plugin in a running process)."""
    _CACHE.clear()


_ENV_OWNERS: dict[str, str] = {}


def register_plugin_envs(
    registry_: PluginRegistry | None = None,
    register: Callable[..., None] | None = None,
    *,
    warn: bool = True,
) -> list[str]:
    """Register with Gymnasium the env ids that plugins add through ``register_envs``.

    An id that is already registered by someone else marks that plugin failed (and is skipped);
    registering the same plugin's ids again is a no-op, so this is idempotent.

    Args:
        registry_: by default the process-wide :func:`registry`.
        register: the Gymnasium-style callback; by default ``gymnasium.register``.
        warn: emit a :class:`PluginWarning` per failed plugin (import, registration or duplicate id).

    Returns:
        The ids registered now.
    """
    import gymnasium as gym

    registry_ = registry() if registry_ is None else registry_
    register = gym.register if register is None else register
    added: list[str] = []
    for status, spec in registry_.env_specs():
        env_id = spec["id"]
        owner = f"{status.distribution} (plugin {status.name!r})"
        if env_id in gym.registry:
            if _ENV_OWNERS.get(env_id) != owner:
                status.status = "failed"
                status.error = (
                    f"env id {env_id!r} is already registered by {_ENV_OWNERS.get(env_id, 'another package')}; "
                    "choose an id in your own namespace"
                )
            continue
        try:
            register(**spec)
        except Exception as error:  # noqa: BLE001
            status.status, status.error = "failed", f"registering env {env_id!r} failed: {_one_line(error)}"
            continue
        _ENV_OWNERS[env_id] = owner
        added.append(env_id)
    if warn:
        for status in registry_.failures():
            warnings.warn(
                f"nlp-envs: plugin {status.name!r} from {status.distribution} was not loaded: {status.error}",
                PluginWarning,
                stacklevel=3,
            )
    return added


def describe(registry_: PluginRegistry | None = None) -> list[dict[str, str]]:
    """Rows for ``nlp-envs agents``: one per agent, conflict or plugin that did not load."""
    registry_ = registry() if registry_ is None else registry_
    rows: list[dict[str, str]] = []
    for plugin in registry_.plugins:
        names = plugin.agents if plugin.status == "loaded" else []
        for name in names:
            status = "ok" if name in registry_.agents else f"conflict: {registry_.conflicts[name]}"
            rows.append(
                dict(
                    agent=name,
                    distribution=plugin.distribution,
                    version=plugin.version,
                    plugin=plugin.name,
                    status=status,
                )
            )
        if plugin.status != "loaded" or not (plugin.agents or plugin.envs):
            reason = plugin.status if plugin.error is None else f"{plugin.status}: {plugin.error}"
            if plugin.status == "loaded":
                reason = "loaded (registers no agent)"
            rows.append(
                dict(
                    agent="-",
                    distribution=plugin.distribution,
                    version=plugin.version,
                    plugin=plugin.name,
                    status=reason,
                )
            )
    return rows


def agent_names(registry_: PluginRegistry | None = None) -> Sequence[str]:
    """Sorted names of the usable agents."""
    registry_ = registry() if registry_ is None else registry_
    return sorted(registry_.agents)
