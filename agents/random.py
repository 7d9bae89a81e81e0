"""``random``: uniformly random actions (over the allowed ones where the env masks actions).

The floor of every leaderboard, and the simplest agent to copy when writing a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import BaseAgent, Callback, action_masks, random_actions


@dataclass
class RandomConfig:
    """The random agent has no hyper-parameters."""


class RandomAgent(BaseAgent):
    """Acts uniformly at random from its own seeded generator; ``learn`` acts and learns nothing."""

    name = "random"
    Config = RandomConfig
    next_step_autoreset = False

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)
        self._playing = False
        self._masks: np.ndarray | None = None

    def learn(self, total_timesteps: int, callback: Callback | None = None) -> RandomAgent:
        """Plays ``total_timesteps`` env steps at random and learns nothing.

        It steps the env all the same, so that its training speed on a leaderboard is the env's own
        speed under the same loop: the ceiling for every agent, not a meaningless count.
        """
        env = self.env
        if not self._playing:
            _, infos = env.reset(seed=self.seed)
            self._masks, self._playing = action_masks(env, infos), True
        target_steps = self.num_timesteps + int(total_timesteps)
        while self.num_timesteps < target_steps:
            actions = random_actions(self.rng, self.n_actions, env.num_envs, self._masks)
            *_, infos = env.step(actions)
            self._masks = action_masks(env, infos)
            self.num_timesteps += env.num_envs
            if callback is not None and callback(self, self.num_timesteps) is False:
                break
        return self

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Random actions, one per observation, among the allowed ones where ``action_masks`` is given.

        ``deterministic`` is ignored: random is random.
        """
        observations = self._check_observations(observation)
        action_masks = self._check_masks(action_masks, len(observations))
        return random_actions(self.rng, self.n_actions, len(observations), action_masks)
