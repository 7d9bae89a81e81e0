"""``qtable``: tabular Q-learning over a batched vector env.

For ``Discrete`` or small ``MultiDiscrete`` observations (e.g. ``nlp_envs/NextWordEasy-v0``: 13 x 13 x 5
states). All slots of the vector env act and learn at once: each vector step makes one averaged
update per distinct (state, action) pair seen in the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from nlp_agents.base import (
    MAX_COUNT,
    BaseAgent,
    Step,
    UnsupportedEnvError,
    check_memory,
    diverged,
    hyper,
    masked_argmax,
    unit,
)


@dataclass
class QTableConfig:
    """Hyper-parameters of tabular Q-learning."""

    gamma: float = unit(0.99)
    """Discount factor."""
    learning_rate: float = hyper(0.5, 0.0, 1.0, low_open=True)
    """Step size of each update, applied to the batch-mean TD error of a (state, action) pair."""
    epsilon_start: float = unit(1.0)
    """Exploration rate at the start."""
    epsilon_end: float = unit(0.05)
    """Exploration rate after the decay."""
    exploration_fraction: float = unit(0.5)
    """Fraction of ``total_timesteps`` over which epsilon decays linearly."""
    bootstrap_truncated: bool = False
    """Bootstrap from the last observation when an episode is truncated (off: the step limit is part of
    the scored task, as for ``dqn`` and ``vlearner``)."""
    initial_value: float = 0.0
    """Initial Q value (high values explore optimistically)."""
    max_table_size: int = hyper(50_000_000, 1, MAX_COUNT)
    """Largest table (states x actions) allowed; bigger spaces are an error."""


def state_shape(space: gym.Space, agent: str = "qtable") -> tuple[int, ...]:
    """The number of values of each observation component, or raise for spaces a table cannot hold."""
    if isinstance(space, gym.spaces.Discrete):
        return (int(space.n),)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        return tuple(int(n) for n in space.nvec)
    described = f"{type(space).__name__}(shape={space.shape})" if len(str(space)) > 80 else str(space)
    raise UnsupportedEnvError(
        f"{agent}: a Q table needs Discrete or 1-d MultiDiscrete observations, got {described}; "
        "use 'dqn' or 'vlearner' for this env."
    )


def update(
    table: np.ndarray, states: np.ndarray, actions: np.ndarray, targets: np.ndarray, learning_rate: float
) -> None:
    """Move ``table[s, a]`` toward the mean target of each distinct pair (in place, order-free)."""
    flat = states * table.shape[1] + actions
    unique, inverse = np.unique(flat, return_inverse=True)
    sums = np.bincount(inverse, weights=targets - table.reshape(-1)[flat])
    counts = np.bincount(inverse)
    table.reshape(-1)[unique] += learning_rate * sums / counts


class QTableAgent(BaseAgent):
    """Tabular Q-learning; see :class:`QTableConfig` for the hyper-parameters."""

    name = "qtable"
    Config = QTableConfig

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)
        self.dims = state_shape(env.single_observation_space)
        n_states = int(np.prod(self.dims, dtype=np.float64))
        size = float(np.prod(self.dims, dtype=np.float64)) * self.n_actions
        if size > self.config.max_table_size:
            raise UnsupportedEnvError(
                f"qtable: {env.single_observation_space} x {self.n_actions} actions needs a table of "
                f"{size:,.0f} entries, more than max_table_size={self.config.max_table_size:,}; use 'dqn' or "
                "'vlearner', or a smaller preset (e.g. nlp_envs/NextWordEasy-v0)."
            )
        check_memory(self.name, {"Q table (states x actions x 8 bytes)": 8.0 * size})
        self.table = np.full((n_states, self.n_actions), self.config.initial_value, dtype=np.float64)
        self.td_loss: float | None = None  # for the logger

    def states(self, observations: np.ndarray) -> np.ndarray:
        """Row indices of the table for a batch of observations."""
        observations = np.asarray(observations, dtype=np.int64).reshape(len(observations), -1)
        return np.ravel_multi_index(tuple(observations.T), self.dims)

    def greedy(self, observations: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """The allowed act of highest Q value in each row (lowest index on ties)."""
        return masked_argmax(self.table[self.states(observations)], masks)

    def observe(self, step: Step) -> None:
        """One Q-learning update from the step's transitions."""
        config = self.config
        next_values = masked_argmax_values(self.table[self.states(step.next_observations)], step.next_masks)
        targets = step.rewards + config.gamma * np.where(step.stops, 0.0, next_values)
        if not np.isfinite(targets.sum()):  # a few ns: targets has num_envs entries
            raise diverged(self.name, self.num_timesteps, "the TD target (reward + discounted value)")
        valid = step.valid
        states, actions = self.states(step.observations)[valid], step.actions[valid]
        if self.log_due and valid.any():  # the logger writes after this step: the TD error before the update
            self.td_loss = float(np.mean(np.square(targets[valid] - self.table[states, actions])))
        update(self.table, states, actions, targets[valid], config.learning_rate)

    def training_scalars(self, done: int, total: int) -> dict[str, float]:
        """Adds ``train/loss`` (mean squared TD error of the last logged step) and ``train/q_mean`` (of the slots)."""
        scalars = super().training_scalars(done, total)
        if self.td_loss is not None:
            scalars["train/loss"] = self.td_loss
        if self._observations is not None:
            values = masked_argmax_values(self.table[self.states(self._observations)], self._masks)
            scalars["train/q_mean"] = float(values.mean())
        return scalars

    def _tensors(self) -> dict[str, Any]:
        return {"table": self.table}

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        self.table[...] = tensors["table"].numpy()


def masked_argmax_values(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Row-wise max over allowed entries."""
    return values[np.arange(len(values)), masked_argmax(values, mask)]
