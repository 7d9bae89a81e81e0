"""Agents for nlp-envs, found through plugins (the built-in ones too).

>>> import nlp_agents
>>> {"random", "qtable", "dqn", "vlearner", "sb3-a2c"} <= set(nlp_agents.available())
True

Write a plugin: implement ``register_agents(register)`` with :data:`hookimpl` and declare the module
in the ``nlp_envs`` entry-point group of your distribution (see ``plugins/nlp-envs-sb3-contrib``).
An agent that has a ``set_logger(logger)`` method is handed a logger for TensorBoard scalars when
asked (``make(..., tensorboard=DIR)``, ``--tensorboard DIR``); :mod:`nlp_agents.logger` documents it.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from nlp_agents.base import (
    AgentFileError,
    DivergedError,
    HyperparameterError,
    UnsupportedEnvError,
    check_writable,
    read_agent_meta,
)
from nlp_agents.builtin import LazyFactory
from nlp_agents.hookspecs import hookimpl
from nlp_agents.logger import Logger, LoggerNotSupportedError, TensorBoardLogger, check_tensorboard, open_logger
from nlp_agents.plugins import BLOCK_VARIABLE, AgentConflictError, AgentEntry, registry

#: The methods without which an agent cannot be trained or scored. ``save`` (and the class-level
#: ``load``) are part of a leaderboard-ready agent, but the plugin README's minimal agent has neither:
#: ``nlp-envs train --save`` checks ``save`` itself.
AGENT_METHODS = ("learn", "predict")


class UnknownAgentError(KeyError, ValueError):
    """No usable agent has this name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AgentFactoryError(ValueError, TypeError):
    """An agent plugin's factory (or its ``load``) returned something that is not an agent.

    A ``TypeError`` (the wrong type of object) and a ``ValueError`` (the command line reports it as
    one line, exit 2: the user can block or fix the plugin).
    """


def check_agent(agent: Any, entry: AgentEntry, made_by: str = "factory") -> Any:
    """``agent`` itself if it has the agent protocol's methods, else an error naming the plugin.

    Args:
        agent: what the plugin returned.
        entry: the registry entry of the agent name (its plugin and distribution name it).
        made_by: what returned it, for the message (``"factory"``, ``"load"``).

    Raises:
        AgentFactoryError: ``agent`` lacks a callable ``learn`` or ``predict``; the message
            names the agent, its plugin and distribution, what was returned and what is expected.
    """
    missing = [method for method in AGENT_METHODS if not callable(getattr(agent, method, None))]
    if missing:
        shown = " ".join(reprlib.repr(agent).split())
        methods = f"{', '.join(missing)} method{'s' * (len(missing) > 1)}"
        raise AgentFactoryError(
            f"agent {entry.name!r} (plugin {entry.plugin!r} of {entry.distribution} {entry.version}): its {made_by} "
            f"returned {shown} of type {type(agent).__name__}, which has no {methods}; expected an agent with "
            "learn(total_timesteps) and predict(observation, deterministic); fix the plugin, or skip it with "
            f"{BLOCK_VARIABLE}={entry.plugin}."
        )
    return agent


def available() -> dict[str, str]:
    """Usable agent names, sorted, each with ``"distribution version"`` of the plugin that provides it."""
    agents = registry().agents
    return {name: f"{agents[name].distribution} {agents[name].version}" for name in sorted(agents)}


def entry(name: str) -> AgentEntry:
    """The registry entry of agent ``name``; an unknown name lists the known ones and failed plugins."""
    current = registry()
    if name in current.conflicts:
        raise current.conflicts[name]
    if name not in current.agents:
        message = f"unknown agent {name!r}; available agents: {', '.join(sorted(current.agents)) or '(none)'}."
        failed = current.failures()
        if failed:
            message += " Plugins that failed to load: " + "; ".join(f"{p.name} ({p.error})" for p in failed) + "."
        blocked = [p.name for p in current.plugins if p.status == "blocked"]
        if blocked:
            message += f" Blocked by NLP_ENVS_BLOCK_PLUGINS: {', '.join(blocked)}."
        message += " Run `nlp-envs agents` to see every plugin."
        raise UnknownAgentError(message)
    return current.agents[name]


def make(
    name: str,
    env: Any,
    seed: int = 0,
    device: str = "auto",
    *,
    tensorboard: str | Path | None = None,
    **hyperparams: Any,
) -> Any:
    """Build agent ``name`` for a Gymnasium ``VectorEnv``.

    Args:
        name: an agent name from :func:`available`.
        env: a ``gymnasium.vector.VectorEnv`` (e.g. ``gym.make_vec(id, num_envs=8,
            vectorization_mode="vector_entry_point")``).
        seed: seeds every random choice of the agent (bit-for-bit reproducible on CPU).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        tensorboard: a run folder; ``learn`` then writes TensorBoard scalars there (episodic return
            and length, task metrics, loss, mean Q or V, epsilon, learning rate, steps per second;
            see :mod:`nlp_agents.logger`). Not a hyper-parameter: it changes no result. The agent is
            handed the logger through its ``set_logger``; an agent without one is refused
            (:class:`~nlp_agents.logger.LoggerNotSupportedError`).
        **hyperparams: the agent's hyper-parameters; unknown or ill-typed ones are an error that
            lists the accepted ones.

    Returns:
        The agent (``learn``, ``predict``, ``save``, ``load``).

    Raises:
        ModuleNotFoundError: ``tensorboard`` is given but the package is missing (the message names
            the extra ``nlp-envs[tensorboard]``).
        nlp_envs.atomic.NotWritableError: the ``tensorboard`` folder cannot be written (checked before
            the agent is built).
        LoggerNotSupportedError: ``tensorboard`` is given and the agent has no ``set_logger``.
        AgentFactoryError: the plugin's factory returned something without ``learn`` and ``predict``.
    """
    if tensorboard is not None:
        check_tensorboard(tensorboard)  # before building: a missing package or a bad folder fails in a moment
    found = entry(name)
    agent = check_agent(found.factory(env, seed=seed, device=device, **hyperparams), found)
    if tensorboard is not None:
        open_logger(tensorboard, agent, name)
    return agent


def load(path: str | Path, env: Any, device: str = "auto") -> Any:
    """Load an agent saved with ``agent.save(path)``, whichever agent it is, for ``env``."""
    meta, _ = read_agent_meta(path)
    found = entry(meta["agent"])
    loader = getattr(found.factory, "load", None)
    if loader is None:
        raise AgentFileError(
            f"agent {meta['agent']!r} was found but its factory has no load(path, env, device); "
            "register the agent class itself (or give the factory a load attribute)."
        )
    return check_agent(loader(path, env, device=device), found, made_by="load")


__all__ = [
    "AGENT_METHODS",
    "LazyFactory",
    "AgentConflictError",
    "AgentFactoryError",
    "AgentFileError",
    "DivergedError",
    "HyperparameterError",
    "Logger",
    "LoggerNotSupportedError",
    "TensorBoardLogger",
    "UnknownAgentError",
    "UnsupportedEnvError",
    "available",
    "check_agent",
    "check_writable",
    "hookimpl",
    "load",
    "make",
]
