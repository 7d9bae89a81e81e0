"""``random``: uniformly random actions (over the allowed ones where the env masks actions).

The floor of every leaderboard, and the simplest agent to copy when writing a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import BaseAgent, Callback, random_actions


@dataclass
class RandomConfig:
    """The random agent has no hyper-parameters."""


class RandomAgent(BaseAgent):
    """Acts uniformly at random from its own seeded generator; ``learn`` only counts timesteps."""

    name = "random"
    Config = RandomConfig
    next_step_autoreset = False

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)

    def learn(self, total_timesteps: int, callback: Callback | None = None) -> RandomAgent:
        """Nothing to learn: counts the timesteps and calls ``callback`` once."""
        self.num_timesteps += int(total_timesteps)
        if callback is not None:
            callback(self, self.num_timesteps)
        return self

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Random actions, one per observation, among the allowed ones where ``action_masks`` is given.

        ``deterministic`` is ignored: random is random.
        """
        observations = self._check_observations(observation)
        return random_actions(self.rng, self.n_actions, len(observations), action_masks)
