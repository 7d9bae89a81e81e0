"""The built-in agents as plugins.

Each built-in plugin is an entry point of the ``nlp_envs`` group of this distribution (see
``pyproject.toml``); its entry-point name is the name ``NLP_ENVS_BLOCK_PLUGINS`` blocks it by. An
entry point ``foo = "nlp_agents.builtin:foo"`` registers the agent ``foo`` of module ``nlp_agents/foo.py``:
the agent class there whose ``name`` is ``"foo"`` (:func:`__getattr__` makes that plugin), so a new
built-in agent is its file and that one line; this module needs no edit. The factory imports the
agent module only when an agent is made, so ``nlp-envs agents`` stays fast (no torch import).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from nlp_agents.hookspecs import hookimpl


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


class NamedAgentFactory(LazyFactory):
    """A :class:`LazyFactory` for the class of module ``target`` whose ``name`` attribute is ``agent``.

    The agent's name is written once, in its own file; no class name is repeated here.
    """

    def __init__(self, target: str, agent: str) -> None:
        super().__init__(target)
        self.agent = agent

    def resolve(self) -> Any:
        """Import the module and return its agent class named ``agent``.

        Raises:
            LookupError: the module defines no class with that ``name``.
        """
        module = importlib.import_module(self.target)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and value.__dict__.get("name") == self.agent
            ):
                return value
        raise LookupError(
            f"module {self.target} defines no agent class with name = {self.agent!r}; a built-in agent file "
            f"nlp_agents/<name>.py holds the class whose name attribute is its file name."
        )

    def __repr__(self) -> str:
        return f"NamedAgentFactory({self.target!r}, {self.agent!r})"


class BuiltinPlugin:
    """A plugin object registering the agents ``names`` of module ``module``."""

    def __init__(self, module: str, names: tuple[str, ...]) -> None:
        self.module = module
        self.names = names

    @hookimpl
    def register_agents(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register each built-in agent of this plugin."""
        for name in self.names:
            register(name, NamedAgentFactory(self.module, name))

    def __repr__(self) -> str:
        return f"BuiltinPlugin({self.module!r}, {self.names!r})"


sb3 = BuiltinPlugin("nlp_agents.sb3", ("sb3-a2c", "sb3-ppo", "sb3-dqn"))
"""The Stable-Baselines3 adapters: one module, three agents (names are not module names)."""


@functools.cache
def __getattr__(name: str) -> BuiltinPlugin:
    """The plugin of the built-in agent ``name``, defined in module ``nlp_agents.<name>``.

    Raises:
        AttributeError: there is no such module.
    """
    if not name.startswith("_") and importlib.util.find_spec(f"{__package__}.{name}") is not None:
        return BuiltinPlugin(f"{__package__}.{name}", (name,))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (there is no nlp_agents/{name}.py)")
