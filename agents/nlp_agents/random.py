"""``random``: uniformly random actions (over the allowed ones where the env masks actions).

The floor of every leaderboard, and the simplest agent to copy when writing a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlp_agents.base import BaseAgent, random_actions


@dataclass
class RandomConfig:
    """The random agent has no hyper-parameters."""


class RandomAgent(BaseAgent):
    """Acts uniformly at random from its own seeded generator; ``learn`` acts and learns nothing."""

    name = "random"
    Config = RandomConfig
    next_step_autoreset = False

    def behave(self, observations: np.ndarray, masks: np.ndarray | None, done: int, total: int) -> np.ndarray:
        """Random acts: ``learn`` plays at random and learns nothing.

        It steps the env all the same, so that its training speed on a leaderboard is the env's own
        speed under the same loop: the ceiling for every agent, not a meaningless count.
        """
        return random_actions(self.rng, self.n_actions, len(observations), masks)

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Random actions, one per observation, among the allowed ones where ``action_masks`` is given.

        ``deterministic`` is ignored: random is random.
        """
        observations = self._check_observations(observation)
        action_masks = self._check_masks(action_masks, len(observations))
        return random_actions(self.rng, self.n_actions, len(observations), action_masks)
