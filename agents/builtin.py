"""The built-in agents as plugins.

Light objects that the ``nlp_envs`` entry points of this distribution name (see
``pyproject.toml``). Each registers a factory that imports its agent module only when an agent
is made, so ``import nlp_envs`` and ``nlp-envs agents`` stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from agents.hookspecs import hookimpl


class LazyFactory:
    """A factory for ``module:Class`` that imports the module on first use.

    Calling it builds the agent; ``load`` and ``Config`` are the class's.
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def resolve(self) -> Any:
        """Import and return the agent class."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __call__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> Any:
        """Build the agent: ``Class(env, seed=seed, device=device, **hyperparams)``."""
        return self.resolve()(env, seed=seed, device=device, **hyperparams)

    def load(self, path: Any, env: Any, device: str = "auto") -> Any:
        """``Class.load(path, env, device)``."""
        return self.resolve().load(path, env, device=device)

    def __repr__(self) -> str:
        return f"LazyFactory({self.target!r})"


class BuiltinPlugin:
    """A plugin object registering the agents ``{name: "module:Class"}``."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.targets = targets

    @hookimpl
    def register_agents(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register each built-in agent of this plugin."""
        for name, target in self.targets.items():
            register(name, LazyFactory(target))


random = BuiltinPlugin({"random": "agents.random:RandomAgent"})
qtable = BuiltinPlugin({"qtable": "agents.qtable:QTableAgent"})
dqn = BuiltinPlugin({"dqn": "agents.dqn:DQNAgent"})
vlearner = BuiltinPlugin({"vlearner": "agents.vlearner:VLearnerAgent"})
sb3 = BuiltinPlugin(
    {"sb3-a2c": "agents.sb3:A2CAgent", "sb3-ppo": "agents.sb3:PPOAgent", "sb3-dqn": "agents.sb3:DQNAgent"}
)
