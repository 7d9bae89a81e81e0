"""The sb3-contrib algorithms as nlp-envs agents (imported when an agent is made)."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.sb3 import DQNAgent, SB3Agent


class QRDQNAgent(SB3Agent):
    """``qrdqn``: sb3-contrib's quantile-regression DQN."""

    name = "qrdqn"
    defaults: ClassVar[dict[str, Any]] = DQNAgent.defaults  # the same replay settings as sb3-dqn

    @staticmethod
    def algorithm() -> type:
        """``sb3_contrib.QRDQN``."""
        from sb3_contrib import QRDQN

        return QRDQN


class MaskablePPOAgent(SB3Agent):
    """``maskable-ppo``: sb3-contrib's PPO that never samples a masked action."""

    name = "maskable-ppo"
    maskable = True
    defaults: ClassVar[dict[str, Any]] = {"n_steps": 128, "batch_size": 64}

    @staticmethod
    def algorithm() -> type:
        """``sb3_contrib.MaskablePPO``."""
        from sb3_contrib import MaskablePPO

        return MaskablePPO
