"""Action masks for sb3-contrib's QR-DQN, as :mod:`nlp_agents.sb3_masking` does for SB3's DQN.

The adapter hands the algorithm ``{"observation", "action_mask"}`` Dict observations on an env with
masks. :class:`MaskedQuantileNetwork` sets every quantile of a masked act to a large negative
number, so the greedy act (the argmax of the mean quantile) and the bootstrap target's act range
over the allowed acts only; :class:`MaskedQRDQN` explores among the allowed acts.
"""

from __future__ import annotations

from typing import Any

import torch
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork

from nlp_agents.sb3_masking import ACTION_MASK, MASKED_VALUE, AllowedExploration, ObservationExtractor


class MaskedQuantileNetwork(QuantileNetwork):
    """Quantiles ``(batch, n_quantiles, n_actions)`` with those of masked acts set to ``MASKED_VALUE``."""

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """The quantiles of every act; a masked act's are all ``MASKED_VALUE``."""
        return super().forward(obs).masked_fill((obs[ACTION_MASK] < 0.5)[:, None, :], MASKED_VALUE)


class MaskedQRDQNPolicy(QRDQNPolicy):
    """QR-DQN's policy with :class:`MaskedQuantileNetwork` as online and target network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", ObservationExtractor)
        super().__init__(*args, **kwargs)

    def make_quantile_net(self) -> QuantileNetwork:
        """A :class:`MaskedQuantileNetwork` with its own features extractor (as QR-DQN's own)."""
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return MaskedQuantileNetwork(**net_args).to(self.device)


class MaskedQRDQN(AllowedExploration, QRDQN):  # type: ignore[misc]
    """QR-DQN exploring among allowed acts (see :class:`~nlp_agents.sb3_masking.AllowedExploration`)."""
