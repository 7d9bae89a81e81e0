"""The contract between logged datasets and offline agents: :class:`Transitions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Transitions:
    """``n`` logged transitions ``(s, a, r, s', terminated, truncated)`` of one env, flat over episodes.

    Attributes:
        observations: ``(n, *observation_shape)`` in the observation space's dtype.
        actions: ``(n,)`` int64 actions of the behaviour policy.
        rewards: ``(n,)`` float32.
        next_observations: ``(n, *observation_shape)``; the final observation where the episode ended.
        terminations: ``(n,)`` bool; True where ``s'`` is terminal (no bootstrapping from it).
        truncations: ``(n,)`` bool; True where the episode was cut off at ``s'`` (bootstrap from it).
        action_masks: ``(n, n_actions)`` bool, the acts allowed in ``s``; None for an unmasked env.
        next_action_masks: ``(n, n_actions)`` bool, the acts allowed in ``s'``; None for an unmasked env.
        env_id: the Gymnasium id the data was collected on (``gym.make(env_id, **env_kwargs)``).
        env_kwargs: the keyword arguments of that env.
        dataset_id: the dataset's id (a Minari id or a path).
        dataset_hash: a sha256 of the dataset's content, recorded with results trained on it.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    action_masks: np.ndarray | None
    next_action_masks: np.ndarray | None
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_id: str = ""
    dataset_hash: str = ""

    def __len__(self) -> int:
        return len(self.actions)
