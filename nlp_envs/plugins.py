"""The env plugin host: finds env plugins through the ``nlp_envs.envs`` entry-point group.

The env side of the project knows nothing of agents: this host loads only the modules declared in
group ``nlp_envs.envs`` and calls only their ``register_envs(register)`` hook. Agent plugins live in
group ``nlp_envs`` and are loaded by the agents' host (``nlp_agents.plugins``), which reuses the
containment below. A distribution that adds both envs and agents declares its env module (for
example ``my_plugin.envs``) in ``nlp_envs.envs`` and its agent module in ``nlp_envs``, so that
``import nlp_envs`` never imports agent code (nor torch); one module may be named in both groups.

Write an env plugin::

    # my_plugin/envs.py
    from nlp_envs.plugins import hookimpl

    @hookimpl
    def register_envs(register):
        register(id="my_ns/MyEnv-v0", entry_point="my_plugin.env:MyEnv",
                 vector_entry_point="my_plugin.env:MyVectorEnv", max_episode_steps=20)

    # pyproject.toml
    [project.entry-points."nlp_envs.envs"]
    my-envs = "my_plugin.envs"

A plugin is contained whatever it does: any exception at import or in its hook, ``SystemExit`` and
``KeyboardInterrupt`` included, marks that plugin failed with its entry point, distribution and
error, and the other plugins still load. ``NLP_ENVS_BLOCK_PLUGINS`` (comma-separated entry-point
names) is read when loading runs.
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

PROJECT_NAME = "nlp_envs"
"""The pluggy project name shared by env and agent plugins (one hookimpl marker serves both)."""

ENV_GROUP = "nlp_envs.envs"
"""The entry-point group of env plugins (``register_envs``)."""

AGENT_GROUP = "nlp_envs"
"""The entry-point group of agent plugins (``register_agents``), loaded by ``nlp_agents.plugins``."""

BLOCK_VARIABLE = "NLP_ENVS_BLOCK_PLUGINS"
"""Environment variable: comma-separated entry-point names that are not loaded."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class PluginWarning(UserWarning):
    """A plugin failed to load or to register; the others were loaded."""


class EnvHookSpecs:
    """The hook of env plugins (pluggy reads the marked method's signature)."""

    @hookspec
    def register_envs(self, register: Callable[..., None]) -> None:
        """Add environments: call ``register(**spec)`` with the keyword arguments of ``gymnasium.register``.

        Use ids in your own namespace, and give a ``vector_entry_point`` so the leaderboard can batch
        your env. ``import nlp_envs`` runs this hook, so installing the plugin is enough for
        ``gym.make`` to see the ids.

        Args:
            register: the host's callback, ``register(id=..., entry_point=..., vector_entry_point=...,
                max_episode_steps=..., reward_threshold=..., kwargs=...)``.
        """


@dataclass
class PluginStatus:
    """What happened when one plugin was loaded.

    Attributes:
        name: the entry-point name (what ``NLP_ENVS_BLOCK_PLUGINS`` lists).
        distribution: the distribution that declares the entry point.
        version: that distribution's version.
        status: ``"loaded"``, ``"blocked"`` or ``"failed"``.
        error: why it failed (the exception, one line), else None.
        agents: the agent names it registered (agent plugins).
        envs: the env specs it registered (env plugins).
        registered_envs: the ids of those that Gymnasium took (some may be there although the plugin failed
            on another).
        note: a remark on a plugin that loaded (e.g. a hook that this group does not call), else None.
    """

    name: str
    distribution: str
    version: str
    status: str = "loaded"
    error: str | None = None
    agents: list[str] = field(default_factory=list)
    envs: list[dict[str, Any]] = field(default_factory=list)
    registered_envs: list[str] = field(default_factory=list)
    note: str | None = None

    def describe(self) -> str:
        """``plugin 'name' (entry point) from distribution version`` for messages."""
        return f"plugin {self.name!r} from {self.distribution} {self.version}"


def blocked_plugins(value: str | None = None) -> frozenset[str]:
    """The entry-point names in ``NLP_ENVS_BLOCK_PLUGINS`` (or in ``value``), read now."""
    text = os.environ.get(BLOCK_VARIABLE, "") if value is None else value
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def distribution_of(point: metadata.EntryPoint) -> tuple[str, str]:
    """``(name, version)`` of the distribution that declares ``point`` (placeholders if unknown)."""
    try:
        dist = getattr(point, "dist", None)
        if dist is None:
            return "(unknown distribution)", "?"
        return dist.metadata["Name"] or dist.name, dist.version or "?"
    except Exception:  # broken metadata must not stop discovery
        return "(unreadable distribution metadata)", "?"


def one_line(error: BaseException) -> str:
    """``Type: message`` of an exception on one line."""
    return "".join(traceback.format_exception_only(type(error), error)).strip().replace("\n", " ")


def find_entry_points(group: str) -> tuple[list[metadata.EntryPoint], list[PluginStatus]]:
    """The installed entry points of ``group``, sorted by (distribution, name), and discovery failures.

    Reading the installed metadata itself can fail (a distribution with a malformed
    ``entry_points.txt``); then each readable distribution is read on its own and every unreadable
    one becomes a failed :class:`PluginStatus`, so one broken install does not hide the others.
    """
    try:
        points = list(metadata.entry_points(group=group))
    except Exception:  # fall back to reading distribution by distribution
        points, failures = [], []
        for dist in metadata.distributions():
            try:
                points.extend(point for point in dist.entry_points if point.group == group)
            except Exception as error:
                name = _safe_name(dist)
                failures.append(
                    PluginStatus(
                        "(entry points)",
                        name,
                        "?",
                        status="failed",
                        error=f"its entry_points.txt cannot be read: {one_line(error)}; reinstall {name}",
                    )
                )
        return sorted(points, key=lambda point: (distribution_of(point)[0], point.name)), failures
    return sorted(points, key=lambda point: (distribution_of(point)[0], point.name)), []


def _safe_name(dist: metadata.Distribution) -> str:
    try:
        return str(dist.metadata["Name"] or dist.name)
    except Exception:
        return "(unreadable distribution metadata)"


def load_into(
    manager: pluggy.PluginManager,
    points: Iterable[metadata.EntryPoint],
    block: frozenset[str],
) -> tuple[list[PluginStatus], dict[str, PluginStatus]]:
    """Import each entry point's object and register it with ``manager``, containing every failure.

    Returns:
        One status per entry point in order, and the loaded ones by entry-point name (the pluggy
        plugin name).
    """
    statuses: list[PluginStatus] = []
    by_name: dict[str, PluginStatus] = {}
    for point in points:
        distribution, version = distribution_of(point)
        status = PluginStatus(point.name, distribution, version)
        statuses.append(status)
        if point.name in block:
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
        except BaseException as error:  # SystemExit or KeyboardInterrupt from a plugin included
            status.status = "failed"
            status.error = f"import failed: {one_line(error)} (entry point {point.name} = {point.value})"
            continue
        by_name[point.name] = status
    return statuses, by_name


def call_hook(impl: Any, status: PluginStatus, **kwargs: Any) -> bool:
    """Call one hook implementation; on any error (``BaseException``) mark its plugin failed, return False."""
    try:
        impl.function(*[kwargs[name] for name in impl.argnames])
    except BaseException as error:  # a plugin's bug, even SystemExit, is reported, not fatal
        status.status = "failed"
        status.error = f"{getattr(impl.function, '__name__', 'hook')} failed: {one_line(error)}"
        return False
    return True


def warn_failures(statuses: Iterable[PluginStatus], stacklevel: int = 3) -> None:
    """One :class:`PluginWarning` per failed plugin, naming its entry point and distribution."""
    for status in statuses:
        if status.status == "failed":
            if status.registered_envs:  # the ids before the one that failed work: say so, not "not loaded"
                outcome = f"was loaded in part (its envs {', '.join(status.registered_envs)} are registered)"
            else:
                outcome = "was not loaded"
            warnings.warn(
                f"nlp-envs: plugin {status.name!r} from {status.distribution} {outcome}: {status.error}",
                PluginWarning,
                stacklevel=stacklevel,
            )


@dataclass
class EnvPluginRegistry:
    """The outcome of loading every env plugin once.

    Attributes:
        plugins: one :class:`PluginStatus` per entry point of group ``nlp_envs.envs``, in loading order.
    """

    plugins: list[PluginStatus]

    def failures(self) -> list[PluginStatus]:
        """The plugins that failed to import, to register, or to add an id."""
        return [plugin for plugin in self.plugins if plugin.status == "failed"]

    def env_specs(self) -> list[tuple[PluginStatus, dict[str, Any]]]:
        """Every env spec registered through ``register_envs``, with its plugin."""
        return [(plugin, spec) for plugin in self.plugins for spec in plugin.envs]


def new_env_plugin_manager() -> pluggy.PluginManager:
    """A fresh pluggy manager with the env hook spec only (no plugins yet)."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(EnvHookSpecs)
    return manager


def _check_spec(spec: dict[str, Any]) -> None:
    """Refuse a spec that ``gymnasium.register`` would take but ``gym.make`` could never build."""
    if not isinstance(spec.get("id"), str) or not spec["id"]:
        raise TypeError(f"register(**spec) needs id= as a non-empty string, got keys {sorted(spec)}")
    for key in ("entry_point", "vector_entry_point"):
        if key == "vector_entry_point" and key not in spec:
            continue  # optional: the leaderboard then cannot batch the env
        value = spec.get(key)
        named = isinstance(value, str) and value.count(":") == 1 and all(value.split(":"))
        if not (named or callable(value)):
            raise TypeError(f"env {spec['id']!r}: {key}={value!r} must be 'module:attribute' or a callable")
    if not isinstance(spec.get("kwargs", {}), dict):
        raise TypeError(f"env {spec['id']!r}: kwargs={spec['kwargs']!r} must be a dict")


def load_env_plugins(
    points: Iterable[metadata.EntryPoint] | None = None, *, block: Iterable[str] | None = None
) -> EnvPluginRegistry:
    """Load env plugins into a fresh manager and collect the specs they register.

    Args:
        points: the entry points to load; by default every installed one of group ``nlp_envs.envs``.
        block: entry-point names to skip; by default ``NLP_ENVS_BLOCK_PLUGINS``, read now.

    Returns:
        An :class:`EnvPluginRegistry`. Nothing is registered with Gymnasium here (see
        :func:`register_plugin_envs`).
    """
    manager = new_env_plugin_manager()
    discovery: list[PluginStatus] = []
    if points is None:
        points, discovery = find_entry_points(ENV_GROUP)
    statuses, by_name = load_into(manager, points, blocked_plugins() if block is None else frozenset(block))
    for impl in manager.hook.register_envs.get_hookimpls():
        status = by_name[impl.plugin_name]
        specs: list[dict[str, Any]] = []

        def register(_specs: list[dict[str, Any]] = specs, **spec: Any) -> None:
            _check_spec(spec)
            _specs.append(spec)

        if call_hook(impl, status, register=register):
            status.envs.extend(specs)
    return EnvPluginRegistry(discovery + statuses)


_CACHE: dict[str, Any] = {}


def env_registry() -> EnvPluginRegistry:
    """The process-wide env plugin registry, loaded on first use and again when the block list changes."""
    key = os.environ.get(BLOCK_VARIABLE, "")
    if _CACHE.get("key") != key or "registry" not in _CACHE:
        _CACHE["registry"] = load_env_plugins()
        _CACHE["key"] = key
    return _CACHE["registry"]


def reset() -> None:
    """Forget the loaded env plugins (tests; after installing a plugin in a running process)."""
    _CACHE.clear()


_ENV_OWNERS: dict[str, str] = {}


def plugin_env_ids() -> list[str]:
    """The env ids that plugins registered through :func:`register_plugin_envs` (any namespace), sorted."""
    import gymnasium as gym

    return sorted(env_id for env_id in _ENV_OWNERS if env_id in gym.registry)


def _builtin_of_same_name(env_id: str) -> str | None:
    """The built-in id with the namespace and name of ``env_id`` but another version, else None."""
    from gymnasium.envs.registration import parse_env_id

    from nlp_envs.registration import BUILTIN_ENVS

    try:
        namespace, name, _ = parse_env_id(env_id)
    except Exception:  # a malformed id: gymnasium.register names it
        return None
    for spec in BUILTIN_ENVS:
        if spec["id"] != env_id and parse_env_id(spec["id"])[:2] == (namespace, name):
            return str(spec["id"])
    return None


def register_plugin_envs(
    registry: EnvPluginRegistry | None = None,
    register: Callable[..., None] | None = None,
    *,
    warn: bool = True,
) -> list[str]:
    """Register with Gymnasium the env ids that plugins add through ``register_envs``.

    An id that is already registered by someone else marks that plugin failed (and is skipped);
    registering the same plugin's ids again is a no-op, so this is idempotent.

    Args:
        registry: by default the process-wide :func:`env_registry`.
        register: the Gymnasium-style callback; by default ``gymnasium.register``.
        warn: emit a :class:`PluginWarning` per failed plugin (import, registration or duplicate id).

    Returns:
        The ids registered now.
    """
    import gymnasium as gym

    registry = env_registry() if registry is None else registry
    register = gym.register if register is None else register
    added: list[str] = []
    for status, spec in registry.env_specs():
        env_id = spec["id"]
        owner = f"{status.distribution} (plugin {status.name!r})"
        shadowed = _builtin_of_same_name(env_id)
        if shadowed is not None:
            status.status = "failed"
            status.error = (
                f"env id {env_id!r} is another version of the built-in {shadowed!r}, so gym.make of the unversioned "
                "name would build the plugin's env; choose an id in your own namespace"
            )
            continue
        if env_id in gym.registry:
            if _ENV_OWNERS.get(env_id) == owner and env_id not in status.registered_envs:
                status.registered_envs.append(env_id)  # by an earlier call: the ids stand
            if _ENV_OWNERS.get(env_id) != owner:
                status.status = "failed"
                status.error = (
                    f"env id {env_id!r} is already registered by {_ENV_OWNERS.get(env_id, 'another package')}; "
                    "choose an id in your own namespace"
                )
            continue
        try:
            register(**spec)
        except BaseException as error:
            status.status, status.error = "failed", f"registering env {env_id!r} failed: {one_line(error)}"
            continue
        _ENV_OWNERS[env_id] = owner
        added.append(env_id)
        status.registered_envs.append(env_id)
    if warn:
        warn_failures(registry.failures(), stacklevel=3)
    return added
