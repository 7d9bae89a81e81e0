"""The hook specifications of the ``nlp_envs`` pluggy project: what a plugin may implement.

A plugin is a module (or any object) named by an entry point in the ``nlp_envs`` group, with
functions marked by :data:`hookimpl`. Both hooks receive a ``register`` callback owned by the
host, so the host sees every name a plugin adds and can refuse collisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "nlp_envs"
"""The pluggy project name (also the entry-point group)."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_agents(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Add agents: call ``register(name, factory)`` once per agent.

    ``factory(env, *, seed: int = 0, device: str = "auto", **hyperparams)`` takes a Gymnasium
    ``VectorEnv`` and returns an agent with ``learn(total_timesteps, callback=None)``,
    ``predict(observation, deterministic=True)``, ``save(path)`` and a class-level
    ``load(path, env, device="auto")``. Give the factory a ``load`` attribute (for example, make the
    agent class itself the factory) so that ``agents.load`` can restore saved agents.

    Args:
        register: the host's callback; a name another plugin also registers is an error that names
            both distributions.
    """


@hookspec
def register_envs(register: Callable[..., None]) -> None:
    """Add environments: call ``register(**spec)`` with the keyword arguments of ``gymnasium.register``.

    Use ids in your own namespace or in ``nlp_envs/``, and give a ``vector_entry_point`` so the
    leaderboard can batch your env. ``import nlp_envs`` runs this hook, so installing the plugin is
    enough for ``gym.make`` to see the ids.

    Args:
        register: the host's callback, ``register(id=..., entry_point=..., vector_entry_point=...,
            max_episode_steps=..., reward_threshold=..., kwargs=...)``.
    """
