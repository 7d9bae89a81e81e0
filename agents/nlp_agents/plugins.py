"""The agent plugin host: finds agent plugins through the ``nlp_envs`` entry-point group.

The built-in agents are declared as entry points of the ``nlp-envs`` distribution (see
``pyproject.toml``), so one path finds them and third-party ones. Loading runs when an agent or the
list of plugins is first needed; it reads ``NLP_ENVS_BLOCK_PLUGINS`` (comma-separated entry-point
names) at that moment. A plugin that fails to import or to register (any exception, ``SystemExit``
and ``KeyboardInterrupt`` included) is recorded with its error, entry point and distribution and
skipped; the others still load. Two plugins that register the same agent name make that name
unusable, with an error naming both distributions (the host never renames silently). Env plugins
are the env side's business (:mod:`nlp_envs.plugins`, group ``nlp_envs.envs``); this host reuses
its containment and never calls ``register_envs``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from nlp_agents import hookspecs
from nlp_envs.plugins import (
    BLOCK_VARIABLE,
    ENV_GROUP,
    PluginStatus,
    PluginWarning,
    blocked_plugins,
    call_hook,
    distribution_of,
    find_entry_points,
    load_into,
)

__all__ = [
    "BLOCK_VARIABLE",
    "AgentConflictError",
    "AgentEntry",
    "PluginRegistry",
    "PluginStatus",
    "PluginWarning",
    "blocked_plugins",
    "describe",
    "distribution_of",
    "entry_points",
    "load_plugins",
    "new_plugin_manager",
    "registry",
    "reset",
]


class AgentConflictError(ValueError):
    """Two plugins registered the same agent name."""


@dataclass(frozen=True)
class AgentEntry:
    """One registered agent.

    Attributes:
        name: the agent's name, as passed to ``nlp_agents.make``.
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
class PluginRegistry:
    """The outcome of loading every agent plugin once: agents and per-plugin status.

    Attributes:
        plugins: one :class:`PluginStatus` per entry point, in loading order.
        agents: usable agents by name.
        conflicts: agent names registered by more than one plugin, with the error to raise.
    """

    plugins: list[PluginStatus]
    agents: dict[str, AgentEntry]
    conflicts: dict[str, AgentConflictError]

    def failures(self) -> list[PluginStatus]:
        """The plugins that failed to import or to register."""
        return [plugin for plugin in self.plugins if plugin.status == "failed"]


AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
"""What an agent name may be: a control character, space or slash in one would reach terminals, tables
and folder names (``--agent NAME``, ``[agents.NAME]``, ``DIR/agent/env/seed-S``)."""


def new_plugin_manager() -> pluggy.PluginManager:
    """A fresh pluggy manager for the ``nlp_envs`` project with the agent hook spec (no plugins yet)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def entry_points() -> list[metadata.EntryPoint]:
    """The installed entry points of group ``nlp_envs`` (agent plugins), sorted by (distribution, name)."""
    return find_entry_points(hookspecs.AGENT_GROUP)[0]


def load_plugins(
    points: Iterable[metadata.EntryPoint] | None = None, *, block: Iterable[str] | None = None
) -> PluginRegistry:
    """Load agent plugins into a fresh manager and collect what they register.

    Args:
        points: the entry points to load; by default every installed one of group ``nlp_envs``.
        block: entry-point names to skip; by default ``NLP_ENVS_BLOCK_PLUGINS``, read now.

    Returns:
        A :class:`PluginRegistry`.
    """
    manager = new_plugin_manager()
    installed = points is None
    discovery: list[PluginStatus] = []
    if points is None:
        points, discovery = find_entry_points(hookspecs.AGENT_GROUP)
    points = list(points)
    statuses, by_name = load_into(manager, points, blocked_plugins() if block is None else frozenset(block))
    statuses = discovery + statuses
    if installed and not any(status.distribution == "nlp-envs" for status in statuses):
        statuses.insert(0, _missing_builtins())
    _note_env_hooks(manager, by_name, {point.name: point.value for point in points})

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
            if not AGENT_NAME.fullmatch(name):
                raise TypeError(
                    f"register(name, factory): name {name!r} must be letters, digits and . _ + - (starting with a "
                    "letter or digit, at most 64 characters): it is typed on the command line and in suite files, "
                    "and names run folders"
                )
            if not callable(factory):
                raise TypeError(f"register({name!r}, factory): factory must be callable, got {factory!r}")
            _added.append(AgentEntry(name, factory, _status.name, _status.distribution, _status.version))

        if call_hook(impl, status, register=register):
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
    return PluginRegistry(statuses, agents, conflicts)


def _note_env_hooks(manager: pluggy.PluginManager, by_name: dict[str, PluginStatus], values: dict[str, str]) -> None:
    """Note agent-group plugins with a ``register_envs`` hook that no ``nlp_envs.envs`` entry point names.

    Their envs are not registered (the env side reads group ``nlp_envs.envs`` only); the note says so
    instead of letting the envs vanish without a word.
    """
    hook = getattr(manager.hook, "register_envs", None)
    if hook is None:
        return
    env_values = {point.value for point in find_entry_points(ENV_GROUP)[0]}
    for impl in hook.get_hookimpls():
        status = by_name[impl.plugin_name]
        if values.get(status.name) not in env_values:
            status.note = (
                f"its register_envs is not called from group 'nlp_envs'; declare the module in the "
                f"'{ENV_GROUP}' entry-point group too (e.g. {status.name} = \"{values.get(status.name)}\") "
                "for its envs to be registered"
            )


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
        if plugin.status != "loaded" or not plugin.agents or plugin.note:
            reason = plugin.status if plugin.error is None else f"{plugin.status}: {plugin.error}"
            if plugin.status == "loaded":
                reason = f"loaded: {plugin.note}" if plugin.note else "loaded (registers no agent)"
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
