"""The sb3-contrib algorithms as nlp-envs agents (imported when an agent is made)."""

from __future__ import annotations

from typing import Any, ClassVar

from nlp_agents.sb3 import DQNAgent, SB3Agent


class QRDQNAgent(SB3Agent):
    """``qrdqn``: sb3-contrib's quantile-regression DQN.

    On an env with action masks it runs as :class:`~nlp_envs_sb3_contrib.masking.MaskedQRDQN`: masked
    acts are never chosen, explored, nor used in the bootstrap target (as ``sb3-dqn`` does).
    """

    name = "qrdqn"
    defaults: ClassVar[dict[str, Any]] = DQNAgent.defaults  # the same replay settings as sb3-dqn
    heads = 200  # QR-DQN's default number of quantiles per action

    @staticmethod
    def algorithm() -> type:
        """``sb3_contrib.QRDQN``."""
        from sb3_contrib import QRDQN

        return QRDQN

    @staticmethod
    def masked_variant() -> tuple[type, type]:
        """QR-DQN reading the masks of the adapter's Dict observations."""
        from nlp_envs_sb3_contrib.masking import MaskedQRDQN, MaskedQRDQNPolicy

        return MaskedQRDQN, MaskedQRDQNPolicy

    def q_values(self, observations: Any) -> Any:
        """Each act's Q value: the mean of its quantiles (a masked act's are very negative)."""
        return self.model.quantile_net(observations).mean(dim=1)


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
