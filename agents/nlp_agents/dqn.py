"""``dqn``: our own DQN, written for speed on batched vector envs.

Double Q-learning with a target network, n-step returns and the Huber loss. What makes it fast:
all ``num_envs`` slots act in one forward pass; the replay buffer lives on the agent's device as
``(rows, num_envs)`` arrays in compact dtypes (token ids stay small integers; an env's next
observation is the next row, so it is stored once); n-step returns are computed on the device at
sampling time; Adam is fused; CPU training of small nets runs on one thread.

The NEXT_STEP autoreset of the vector env is handled exactly: the step after an episode's end
restarts the slot and ignores its action, so that row is stored but never sampled as a transition.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nlp_agents.base import (
    Step,
    check_memory,
    count,
    has_masks,
    hyper,
    masked_argmax,
    positive,
    size,
    threads,
    unit,
)
from nlp_agents.networks import (
    FusedAdam,
    NetworkAgent,
    ValueNetwork,
    backward_into_grads,
    best_allowed,
    forward,
    forward_with_cache,
    storage_dtype,
    training_bytes,
)

CHECK_INTERVAL = 100
"""Gradient steps between checks that the TD errors and weights are finite (one host sync each)."""


@dataclass
class DQNConfig:
    """Hyper-parameters of :class:`DQNAgent`."""

    learning_rate: float = positive(1e-3)
    """Adam step size."""
    gamma: float = unit(0.99)
    """Discount factor."""
    n_step: int = size(1)
    """Steps of reward summed before bootstrapping. Above 1, returns mix in the behaviour policy's
    exploratory actions (off-policy bias): on NextWordEasy-v0, n_step=3 with a 100k buffer stalls at
    a normalised score of ~0.78 after 20k steps, where n_step=1 reaches 1.0."""
    bootstrap_truncated: bool = False
    """Bootstrap from the last observation when an episode is truncated. Off by default: the score is
    the return within the env's step limit, so the limit is part of the task (NextWord truncates at
    ``max_words`` while its observation counts the words; bootstrapping there makes an afterstate's
    value refer to itself). Turn it on for envs whose limit is an arbitrary cut of a longer task."""
    buffer_size: int = size(100_000)
    """Replay capacity in transitions (all slots together)."""
    batch_size: int = size(256)
    """Transitions per gradient step."""
    learning_starts: int = count(1_000)
    """Env steps (all slots) collected before the first gradient step."""
    train_frequency: int = size(1)
    """Vector steps between rounds of gradient steps."""
    gradient_steps: int = size(1)
    """Gradient steps per round."""
    target_update_interval: int = size(250)
    """Gradient steps between copies of the online network into the target network."""
    double_q: bool = True
    """Pick the bootstrap action with the online network, value it with the target (double DQN)."""
    epsilon_start: float = unit(1.0)
    """Exploration rate at the start of ``learn``."""
    epsilon_end: float = unit(0.05)
    """Exploration rate after the decay."""
    exploration_fraction: float = unit(0.3)
    """Fraction of ``total_timesteps`` over which epsilon decays linearly."""
    hidden_sizes: tuple[int, ...] = size((64, 64))
    """Widths of the hidden layers of the MLP."""
    embedding_dim: int = size(16)
    """Width of each token's embedding (token-id observations only)."""
    max_grad_norm: float = hyper(10.0, 0.0)
    """Gradient-norm clip (0 = no clipping)."""
    torch_threads: int = threads(1)
    """CPU threads while learning and predicting (0 = torch's default); one is fastest for small nets."""


class Replay:
    """Per-slot replay on the device.

    Row ``t`` holds each slot's observation before step ``t``,
    its action, reward, ``terminated``, ``ended`` and whether it is a real transition (not the
    NEXT_STEP reset step); the next observation of row ``t`` is row ``t + 1``.
    """

    def __init__(self, env: Any, capacity: int, masked: bool, device: torch.device) -> None:
        n, space = env.num_envs, env.single_observation_space
        self.rows, self.num_envs, self.device = max(2, capacity // n), n, device
        shape = (self.rows, n)
        self.observations = torch.zeros(shape + tuple(space.shape or ()), dtype=storage_dtype(space), device=device)
        self.actions = torch.zeros(
            shape, dtype=torch.int32 if env.single_action_space.n > 32_767 else torch.int16, device=device
        )
        self.rewards = torch.zeros(shape, dtype=torch.float32, device=device)
        self.terminated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.ended = torch.zeros(shape, dtype=torch.bool, device=device)
        self.valid = torch.zeros(shape, dtype=torch.bool, device=device)
        self.masks = (
            torch.ones(shape + (env.single_action_space.n,), dtype=torch.bool, device=device) if masked else None
        )
        self.written = 0

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        ended: np.ndarray,
        valid: np.ndarray,
        masks: np.ndarray | None,
    ) -> None:
        """Write one row (one vector step)."""
        row = self.written % self.rows
        self.observations[row] = torch.from_numpy(np.asarray(observations)).to(self.device, self.observations.dtype)
        self.actions[row] = torch.from_numpy(actions).to(self.device, self.actions.dtype)
        self.rewards[row] = torch.from_numpy(rewards).to(self.device, torch.float32)
        self.terminated[row] = torch.from_numpy(terminated).to(self.device)
        self.ended[row] = torch.from_numpy(ended).to(self.device)
        self.valid[row] = torch.from_numpy(valid).to(self.device)
        if self.masks is not None:
            self.masks[row] = True if masks is None else torch.from_numpy(masks).to(self.device)
        self.written += 1

    def can_sample(self, n_step: int) -> bool:
        """Whether some row has its ``n_step`` following rows written."""
        return self.written - 1 - n_step >= max(0, self.written - self.rows)

    def sample(self, batch_size: int, n_step: int, gamma: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A batch of n-step transitions: observations, actions, returns, discounts, next observations.

        A transition is drawn uniformly among the (row, slot) cells whose ``n_step`` following rows are
        written, as one flat index ``row * num_envs + slot``; every array is read with one gather.
        """
        size, width = self.rows * self.num_envs, self.num_envs
        low, high = max(0, self.written - self.rows), self.written - n_step  # rows [low, high)
        flat = torch.randint(low * width, high * width, (batch_size,), generator=generator, device=self.device)
        flat = flat % size
        rewards, ended = self.rewards.view(-1), self.ended.view(-1)
        terminated = self.terminated.view(-1)
        if n_step == 1:
            returns = rewards[flat]
            discounts = torch.where(terminated[flat], 0.0, gamma)
            next_flat = (flat + width) % size
        else:
            steps = (flat[:, None] + width * torch.arange(n_step, device=self.device)) % size
            step_rewards, step_ended, step_terminated = rewards[steps], ended[steps], terminated[steps]
            ended_before = (torch.cumsum(step_ended, dim=1) - step_ended.int()) > 0
            powers = gamma ** torch.arange(n_step, device=self.device, dtype=torch.float32)
            returns = (step_rewards * powers * ~ended_before).sum(dim=1)
            any_end = step_ended.any(dim=1)
            first = step_ended.int().argmax(dim=1)
            length = torch.where(any_end, first + 1, n_step)
            stop = step_terminated.gather(1, first[:, None]).squeeze(1) & any_end
            discounts = torch.where(stop, 0.0, gamma ** length.float())
            next_flat = (flat + width * length) % size
        observations = self.observations.view(size, *self.observations.shape[2:])
        batch = {
            "observations": observations[flat],
            "actions": self.actions.view(-1)[flat].long(),
            "returns": returns,
            "discounts": discounts,
            "next_observations": observations[next_flat],
            "weights": self.valid.view(-1)[flat].float(),
        }
        if self.masks is not None:
            batch["next_masks"] = self.masks.view(size, -1)[next_flat]
        return batch


def td_gradients(
    online: ValueNetwork, target: ValueNetwork, batch: Mapping[str, torch.Tensor], double_q: bool
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TD errors of a batch and the gradient of the Huber loss on the online network's outputs (no host sync).

    The loss, over a batch whose ``weights`` are 1 for transitions and 0 for NEXT_STEP reset rows::

        a*_i     = argmax_a Q(s'_i, a) over the acts next_masks allows   (Q_target(s'_i, a) if not double_q)
        errors_i = Q(s_i, a_i) - (R_i + discount_i * Q_target(s'_i, a*_i))
        loss     = sum_i w_i * huber(errors_i),  w_i = weights_i / sum(weights),
        huber(e) = e^2 / 2 if |e| <= 1 else |e| - 1/2

    is not computed (it would cost kernels and nothing reads it); its gradient is, by hand:
    ``d loss / d Q(s_i, a_i) = w_i * clamp(errors_i, -1, 1)`` and 0 for the other actions. A row of
    ``next_masks`` that allows nothing (a terminal state) lets ``a*`` range over every act.

    Returns:
        ``(outputs, cache, grad_outputs, errors, w)``: the online network's outputs (``Q(s, .)`` in
        the first ``len(errors)`` rows, then ``Q(s', .)`` when ``double_q``) and the
        :func:`~nlp_agents.networks.forward_with_cache` cache that
        :func:`~nlp_agents.networks.backward_into_grads` takes with ``grad_outputs``.
    """
    with torch.no_grad():
        size = len(batch["observations"])
        next_target = forward(target, batch["next_observations"])
        if double_q:  # one pass of the online network over s and s' (small nets: calls cost, rows don't)
            outputs, cache = forward_with_cache(online, torch.cat([batch["observations"], batch["next_observations"]]))
            choose = outputs[size:]
        else:
            outputs, cache = forward_with_cache(online, batch["observations"])
            choose = next_target
        best = best_allowed(choose, batch.get("next_masks"))
        next_values = next_target.gather(1, best[:, None]).squeeze(1)
        targets = batch["returns"] + batch["discounts"] * next_values
        actions = batch["actions"][:, None]
        errors = outputs[:size].gather(1, actions).squeeze(1) - targets
        weights = batch["weights"] / batch["weights"].sum().clamp(min=1.0)
        # d loss / d Q(s_i, a_i) = w_i * huber'(errors_i) = w_i * clamp(errors_i, -1, 1); other outputs: 0.
        grad_outputs = torch.zeros_like(outputs)
        grad_outputs[:size].scatter_(1, actions, (errors.clamp(-1.0, 1.0) * weights)[:, None])
    return outputs, cache, grad_outputs, errors, weights


def update(
    online: ValueNetwork,
    target: ValueNetwork,
    optimizer: FusedAdam,
    batch: Mapping[str, torch.Tensor],
    double_q: bool,
    max_grad_norm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient step of n-step (double) DQN on the Huber loss; returns ``(errors, weights)`` (no host sync).

    The loss and its gradient are :func:`td_gradients`'; the gradient is back-propagated without
    autograd. ``tests/test_gradients.py`` checks the loss, the gradients and the new weights
    against autograd and ``torch.optim.Adam``.
    """
    _, cache, grad_outputs, errors, weights = td_gradients(online, target, batch, double_q)
    backward_into_grads(online, cache, grad_outputs)
    optimizer.step(max_grad_norm)
    return errors, weights


class DQNAgent(NetworkAgent):
    """Our DQN; see :class:`DQNConfig` for the hyper-parameters and the module for the design."""

    name = "dqn"
    Config = DQNConfig
    network_name = "q"
    loss_name = "the TD error (loss)"

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)
        config = self.config
        check_memory(self.name, self.memory_needs(), self.device)
        self.q = self.build_q()
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.optimizer = FusedAdam(list(self.q.parameters()), config.learning_rate)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.gradient_steps_done = 0
        self.replay: Replay | None = None
        self.loss_weights: torch.Tensor | None = None  # the last batch's weights in the loss (for the logger)
        self._vector_steps = 0  # of the current learn call: train_frequency counts them

    def build_q(self) -> torch.nn.Module:
        """The online network, initialised from the seed (a subclass's ``iqn`` builds a quantile network)."""
        return self.build_action_network()

    def training_bytes(self) -> dict[str, float]:
        """Bytes of the networks, their optimiser state and one update's batch (see :meth:`memory_needs`)."""
        return training_bytes(self.env.single_observation_space, self.n_actions, self.config)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One gradient step on a replay batch; sets ``self.loss`` (no host sync)."""
        config, q, q_target = self.config, self.q, self.q_target
        assert isinstance(q, ValueNetwork) and isinstance(q_target, ValueNetwork)  # build_q's
        self.loss, self.loss_weights = update(q, q_target, self.optimizer, batch, config.double_q, config.max_grad_norm)

    def memory_needs(self) -> dict[str, float]:
        """Bytes this configuration will allocate, by what they are for (see :func:`~nlp_agents.base.check_memory`)."""
        env, config = self.env, self.config
        space, n = env.single_observation_space, env.num_envs
        elements = math.prod(space.shape or ())
        cell = elements * storage_dtype(space).itemsize + 4 + 4 + 3 + (self.n_actions if has_masks(env) else 0)
        return {
            "replay buffer (buffer_size)": float(max(2, config.buffer_size // n)) * n * cell,
            **self.training_bytes(),
        }

    def begin(self) -> None:
        """Make the replay buffer on the first call (it stores masks if the env has them)."""
        if self.replay is None:
            masked = self._masks is not None or has_masks(self.env)
            self.replay = Replay(self.env, self.config.buffer_size, masked, self.device)
        self._vector_steps = 0

    def observe(self, step: Step) -> None:
        """Store the step; every ``train_frequency`` vector steps, take ``gradient_steps`` gradient steps."""
        config, replay = self.config, self.replay
        assert replay is not None
        replay.add(step.observations, step.actions, step.rewards, step.stops, step.ended, step.valid, step.masks)
        self._vector_steps += 1
        if (
            self.num_timesteps >= config.learning_starts
            and self._vector_steps % config.train_frequency == 0
            and replay.can_sample(config.n_step)
        ):
            for _ in range(config.gradient_steps):
                batch = replay.sample(config.batch_size, config.n_step, config.gamma, self.generator)
                self.train_step(batch)
                self.gradient_steps_done += 1
                if self.gradient_steps_done % CHECK_INTERVAL == 0:
                    self.check_finite()
                if self.gradient_steps_done % config.target_update_interval == 0:
                    self.q_target.load_state_dict(self.q.state_dict())

    def training_scalars(self, done: int, total: int) -> dict[str, float]:
        """Adds ``train/loss`` (the last update's Huber loss) and ``train/q_mean`` (mean greedy Q of the slots)."""
        scalars = super().training_scalars(done, total)
        loss = self.last_loss()
        if loss is not None:
            scalars["train/loss"] = loss
        if self._observations is not None:
            values = self.network_outputs(self._observations).cpu().numpy()
            scalars["train/q_mean"] = float(values[np.arange(len(values)), masked_argmax(values, self._masks)].mean())
        return scalars

    def last_loss(self) -> float | None:
        """The last update's loss (one host sync; for the logger): the weighted Huber loss of its TD errors."""
        if self.loss is None or self.loss_weights is None:
            return None
        huber = torch.nn.functional.smooth_l1_loss(self.loss, torch.zeros_like(self.loss), reduction="none")
        return float((huber * self.loss_weights).sum())

    def end(self) -> None:
        """Check the TD errors and weights once more."""
        self.check_finite()

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        super()._load_tensors(tensors)
        self.q_target.load_state_dict(self.q.state_dict())
