"""Action masks for Stable-Baselines3's A2C, PPO and DQN.

SB3's own algorithms know nothing of masks, so on an env that defines them the adapter hands SB3 a
``Dict`` observation, ``{"observation": ..., "action_mask": ...}`` (see
:class:`nlp_envs.sb3.CoreVecEnv`). The mask thus travels with the observation into SB3's rollout
and replay buffers, and these policies read it wherever SB3 evaluates the policy:

- :class:`MaskedActorCriticPolicy` (A2C, PPO) gives masked acts no probability, in rollouts and
  in the loss, so the log-probabilities PPO and A2C train on are those of the masked policy;
- :class:`MaskedDQNPolicy` sets masked Q-values to a large negative number, so greedy acting and
  the target's max range over allowed acts only; :class:`MaskedDQN` explores (warm-up and
  epsilon steps) among allowed acts only.

The features extractor reads only ``"observation"``: networks have the shapes they have on the
plain observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork

from nlp_envs.sb3 import ACTION_MASK, OBSERVATION, masked_observation, masked_observation_space

# Finite, so that a masked entry times a zero probability or a zero discount is 0, never NaN.
MASKED_VALUE = -1e8


class ObservationExtractor(BaseFeaturesExtractor):
    """Flattens ``obs["observation"]`` (already one-hot encoded by SB3 where discrete).

    It also keeps the batch's allowed acts in :attr:`allowed`: every path of SB3's actor-critic to an
    action distribution (``forward``, ``evaluate_actions``, ``get_distribution``) runs this extractor
    on the same batch just before, so the policy reads the mask from here.
    """

    def __init__(self, observation_space: spaces.Dict) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space[OBSERVATION]))
        self.flatten = torch.nn.Flatten()
        self.allowed: torch.Tensor | None = None

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flattened observation."""
        self.allowed = observations[ACTION_MASK] > 0.5
        return self.flatten(observations[OBSERVATION])


class MaskedActorCriticPolicy(ActorCriticPolicy):
    """SB3's actor-critic whose categorical distribution leaves out the masked acts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", ObservationExtractor)
        super().__init__(*args, **kwargs)
        if not isinstance(self.pi_features_extractor, ObservationExtractor):
            raise TypeError("MaskedActorCriticPolicy reads the mask through ObservationExtractor; keep it.")

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        extractor = self.pi_features_extractor
        assert isinstance(extractor, ObservationExtractor) and isinstance(self.action_dist, CategoricalDistribution)
        assert extractor.allowed is not None, "the extractor runs on the batch before its distribution"
        allowed = extractor.allowed
        logits = self.action_net(latent_pi).masked_fill(~allowed, MASKED_VALUE)
        return self.action_dist.proba_distribution(action_logits=logits)


class MaskedQNetwork(QNetwork):
    """Q-values with the masked acts set to :data:`MASKED_VALUE`."""

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(obs).masked_fill(obs[ACTION_MASK] < 0.5, MASKED_VALUE)


class MaskedDQNPolicy(DQNPolicy):
    """SB3's DQN policy with :class:`MaskedQNetwork` as online and target network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", ObservationExtractor)
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> QNetwork:
        """A :class:`MaskedQNetwork` with its own features extractor (as SB3's ``make_q_net``)."""
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return MaskedQNetwork(**net_args).to(self.device)


class AllowedExploration:
    """Mixin for SB3's off-policy Q-learners (DQN, sb3-contrib's QR-DQN) on the adapter's Dict observations.

    It replaces ``predict`` (epsilon-greedy, one epsilon draw a batch as SB3 does) and
    ``_sample_action`` (the warm-up before ``learning_starts``) so that random acts are drawn among
    the allowed ones; the greedy acts are the masked policy's.
    """

    action_space: spaces.Discrete
    exploration_rate: float
    num_timesteps: int
    policy: Any
    _last_obs: Any

    def _allowed_random_actions(self, masks: np.ndarray) -> np.ndarray:
        return np.array([self.action_space.sample(mask=row.astype(np.int8)) for row in masks > 0.5])

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's epsilon-greedy ``predict``, with the random acts drawn among the allowed ones."""
        if not deterministic and np.random.rand() < self.exploration_rate:
            return self._allowed_random_actions(np.atleast_2d(observation[ACTION_MASK])), state
        return self.policy.predict(observation, state, episode_start, deterministic)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        assert isinstance(self._last_obs, dict), f"{type(self).__name__} needs the adapter's Dict observations"
        if self.num_timesteps < learning_starts:
            actions = self._allowed_random_actions(self._last_obs[ACTION_MASK])
        else:
            actions, _ = self.predict(self._last_obs, deterministic=False)
        return actions, actions


class MaskedDQN(AllowedExploration, DQN):  # type: ignore[misc]
    """SB3's DQN exploring among allowed acts (see :class:`AllowedExploration`)."""


__all__ = [
    "ACTION_MASK",
    "AllowedExploration",
    "OBSERVATION",
    "MaskedActorCriticPolicy",
    "MaskedDQN",
    "MaskedDQNPolicy",
    "ObservationExtractor",
    "masked_observation",
    "masked_observation_space",
]
