"""nlp-envs agents from sb3-contrib: ``qrdqn`` (distributional DQN) and ``maskable-ppo``.

Both run through nlp-envs' SB3 adapter (``nlp_agents.sb3``), which presents the native batched env as
an SB3 ``VecEnv``; ``maskable-ppo`` reads the envs' action masks through it (Dialogue masks acts
that make no sense in the current dialogue state). This module stays light: ``import nlp_envs``
loads every plugin, so the agents (and torch) are imported only when one is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nlp_agents import LazyFactory, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_agents(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register ``qrdqn`` and ``maskable-ppo``."""
    register("qrdqn", LazyFactory("nlp_envs_sb3_contrib.algorithms:QRDQNAgent"))
    register("maskable-ppo", LazyFactory("nlp_envs_sb3_contrib.algorithms:MaskablePPOAgent"))
