"""The hook specification of agent plugins in the ``nlp_envs`` pluggy project.

An agent plugin is a module (or any object) named by an entry point in the ``nlp_envs`` group, with
functions marked by :data:`hookimpl`. The hook receives a ``register`` callback owned by the host,
so the host sees every name a plugin adds and can refuse collisions. Env plugins have a hook and
an entry-point group of their own (``register_envs``, group ``nlp_envs.envs``: see
:mod:`nlp_envs.plugins`); the marker is the same, so one module may implement both hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nlp_envs.plugins import AGENT_GROUP, PROJECT_NAME, hookimpl, hookspec

__all__ = ["AGENT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec", "register_agents"]


@hookspec
def register_agents(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Add agents: call ``register(name, factory)`` once per agent.

    ``factory(env, *, seed: int = 0, device: str = "auto", **hyperparams)`` takes a Gymnasium
    ``VectorEnv`` and returns an agent with ``learn(total_timesteps, callback=None)``,
    ``predict(observation, deterministic=True)``, ``save(path)`` and a class-level
    ``load(path, env, device="auto")``. Give the factory a ``load`` attribute (for example, make the
    agent class itself the factory) so that ``nlp_agents.load`` can restore saved agents.

    Args:
        register: the host's callback; a name another plugin also registers is an error that names
            both distributions.
    """
