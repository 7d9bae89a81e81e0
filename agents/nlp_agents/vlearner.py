"""``vlearner``: our afterstate state-value learner (DESIGN.md, "The custom V-learner").

It learns ``V(x)`` over afterstates ``x = env.afterstate(s, a)``, the state right after the agent's
choice and before the world answers, and acts greedily (epsilon-greedy while training) over
``V(afterstate(s, a))`` for every legal ``a``. Learning is forward-view TD(lambda): each rollout of
``rollout_steps`` vector steps is turned into lambda-returns

    G_t = r_t + gamma * ((1 - lambda) * v(s_{t+1}) + lambda * G_{t+1}),   v(s) = max_a V(afterstate(s, a)),

cut at episode ends (0 after termination, ``v`` of the final observation after truncation) and,
with ``cut_traces``, after an exploratory act (Watkins's Q(lambda): the returns then estimate the
greedy policy), and ``V(x_t)`` is regressed on ``G_t`` with the Huber loss, ``epochs`` passes a
rollout. In NextWord the afterstate is exactly the next observation, so one value per (context,
length) replaces a Q value per (context, length, word); where a task has no structure the
afterstate is the observation with the action encoded and the learner behaves like a Q-learner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from nlp_agents.base import (
    Step,
    UnsupportedEnvError,
    check_memory,
    epsilon_greedy,
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
    activation_bytes,
    backward_into_grads,
    build_network,
    forward_with_cache,
    network_bytes,
    storage_dtype,
)

MAX_EPOCHS = 1_000
"""The most passes over one rollout: more only fit its noise, and at about a millisecond per minibatch a
million passes make one rollout take hours, so that even ``learn(16)`` seems to hang."""


@dataclass
class VLearnerConfig:
    """Hyper-parameters of :class:`VLearnerAgent`."""

    learning_rate: float = positive(3e-3)
    """Adam step size."""
    gamma: float = unit(0.99)
    """Discount factor."""
    td_lambda: float = unit(0.7)
    """The lambda of TD(lambda): 0 is one-step TD, 1 is Monte Carlo."""
    cut_traces: bool = True
    """Stop a lambda-return at an exploratory act (Watkins): the targets then follow the greedy policy
    the agent is scored with, not the epsilon-greedy one that collected the rollout, whose costly
    random acts would otherwise drag the values of good afterstates down."""
    bootstrap_truncated: bool = False
    """Bootstrap from the last observation when an episode is truncated. Off by default: the score is
    the return within the env's step limit, so the limit is part of the task (NextWord truncates at
    ``max_words`` while its observation counts the words; bootstrapping there makes an afterstate's
    value refer to itself). Turn it on for envs whose limit is an arbitrary cut of a longer task."""
    rollout_steps: int = size(32)
    """Vector steps per rollout (each rollout is learned from, then dropped)."""
    epochs: int = hyper(8, 1, MAX_EPOCHS)
    """Passes over each rollout (at most :data:`MAX_EPOCHS`)."""
    minibatch_size: int = size(128)
    """Afterstates per gradient step."""
    epsilon_start: float = unit(1.0)
    """Exploration rate at the start of ``learn``."""
    epsilon_end: float = unit(0.1)
    """Exploration rate after the decay (high: unlike Q-learning from replay, each rollout is
    learned from once, so values of rarely chosen afterstates go stale without exploration)."""
    exploration_fraction: float = unit(0.3)
    """Fraction of ``total_timesteps`` over which epsilon decays linearly."""
    hidden_sizes: tuple[int, ...] = size((64, 64))
    """Widths of the hidden layers."""
    embedding_dim: int = size(16)
    """Width of each token's embedding (token-id afterstates only)."""
    max_grad_norm: float = hyper(10.0, 0.0)
    """Gradient-norm clip (0 = none)."""
    torch_threads: int = threads(1)
    """CPU threads while learning and predicting (0 = torch's default)."""


def lambda_returns(
    rewards: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    td_lambda: float,
    greedy: np.ndarray | None = None,
) -> np.ndarray:
    """TD(lambda) targets of a rollout, shape ``(steps, num_envs)`` like every input.

    ``next_values[t]`` is ``v(s_{t+1})``; after the last step the return bootstraps fully from it,
    and so it does after step ``t`` where ``greedy[t + 1]`` is False (the next act explored).
    """
    returns = np.zeros_like(rewards, dtype=np.float64)
    following = next_values[-1]
    for t in range(len(rewards) - 1, -1, -1):
        cut = ended[t] if greedy is None or t + 1 == len(rewards) else ended[t] | ~greedy[t + 1]
        mixed = np.where(cut, next_values[t], (1.0 - td_lambda) * next_values[t] + td_lambda * following)
        returns[t] = rewards[t] + gamma * np.where(terminated[t], 0.0, mixed)
        following = returns[t]
    return returns


def update(
    network: ValueNetwork, optimizer: FusedAdam, afterstates: torch.Tensor, targets: torch.Tensor, max_grad_norm: float
) -> torch.Tensor:
    """One gradient step of ``loss = mean_i huber(V(x_i) - G_i)``; returns the loss (no host sync).

    The gradient is written by hand, ``d loss / d V(x_i) = clamp(V(x_i) - G_i, -1, 1) / n``, and
    back-propagated without autograd; ``tests/test_gradients.py`` checks the loss, the gradients and
    the new weights against autograd and ``torch.optim.Adam``.
    """
    with torch.no_grad():
        values, cache = forward_with_cache(network, afterstates)
        errors = values.squeeze(1) - targets
        loss = F.smooth_l1_loss(values.squeeze(1), targets)  # huber(e) = e^2 / 2 if |e| <= 1 else |e| - 1/2
        grad_outputs = (errors.clamp(-1.0, 1.0) / len(errors))[:, None]  # huber'(e) = clamp(e, -1, 1)
    backward_into_grads(network, cache, grad_outputs)
    optimizer.step(max_grad_norm)
    return loss


def afterstate_space(env: Any) -> gym.Space:
    """The env's afterstate space (``env.afterstate_space`` or its core's), or raise."""
    unwrapped = env.unwrapped
    space = getattr(unwrapped, "afterstate_space", None) or getattr(
        getattr(unwrapped, "core", None), "afterstate_space", None
    )
    if space is None or not callable(getattr(unwrapped, "afterstate", None)):
        raise UnsupportedEnvError(
            f"vlearner: the env {type(unwrapped).__name__} has no afterstate(observations, actions) and "
            "afterstate_space; every nlp_envs env has them (see nlp_envs.core.TaskCore.afterstate)."
        )
    return space


class Rollout:
    """The vector steps of one rollout, row ``t`` of each ``(rollout_steps, num_envs)`` array for step ``t``."""

    def __init__(self, steps: int, num_envs: int) -> None:
        self.afterstates: list[np.ndarray] = []
        self.rewards = np.zeros((steps, num_envs))
        self.stops = np.zeros((steps, num_envs), dtype=bool)
        self.ended = np.zeros_like(self.stops)
        self.valid = np.zeros_like(self.stops)
        self.greedy = np.zeros_like(self.stops)
        self.next_values = np.zeros((steps, num_envs))

    def __len__(self) -> int:
        return len(self.afterstates)

    def full(self) -> bool:
        """Whether every row is written."""
        return len(self) == len(self.rewards)


class VLearnerAgent(NetworkAgent):
    """Afterstate V-learning with TD(lambda); see the module docstring."""

    name = "vlearner"
    Config = VLearnerConfig
    network_name = "v"
    loss_name = "the TD(lambda) loss"

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)
        self.space = afterstate_space(env)
        config = self.config
        check_memory(self.name, self.memory_needs(), self.device)
        self.v = build_network(self.space, 1, config.hidden_sizes, config.embedding_dim, self.seed, self.device)
        self.optimizer = FusedAdam(list(self.v.parameters()), config.learning_rate)
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)
        self._all_actions = np.arange(self.n_actions)
        self.afterstate = env.unwrapped.afterstate  # checked by afterstate_space
        self._rollout = Rollout(config.rollout_steps, env.num_envs)
        self._greedy = np.zeros(env.num_envs, dtype=np.int64)  # the slots' greedy acts, computed after each step
        self._values = np.zeros(env.num_envs)  # and their values v(s)

    def memory_needs(self) -> dict[str, float]:
        """Bytes this configuration will allocate, by what they are for (see :func:`~nlp_agents.base.check_memory`)."""
        env, config, space = self.env, self.config, self.space
        elements = math.prod(space.shape or ())
        scored = float(env.num_envs) * self.n_actions  # every slot's afterstates of every action, each step
        return {
            # weights, gradients, Adam's two moments
            "network (hidden_sizes, embedding_dim)": 4.0
            * network_bytes(space, 1, config.hidden_sizes, config.embedding_dim),
            "rollout (rollout_steps)": float(config.rollout_steps)
            * env.num_envs
            * elements
            * (storage_dtype(space).itemsize + 8),
            "afterstate values of every action (num_envs x actions)": scored * elements * 8
            + activation_bytes(space, config.hidden_sizes, config.embedding_dim, scored),
            "update batch (minibatch_size)": 3.0
            * activation_bytes(space, config.hidden_sizes, config.embedding_dim, config.minibatch_size),
        }

    def afterstate_values(self, observations: np.ndarray) -> np.ndarray:
        """``V(afterstate(s, a))`` for every observation and action, shape ``(n, n_actions)``."""
        count = len(observations)
        afterstates = self.afterstate(
            np.repeat(observations, self.n_actions, axis=0), np.tile(self._all_actions, count)
        )
        with torch.no_grad():
            values = self.v(torch.from_numpy(np.asarray(afterstates)).to(self.device))
        return values.reshape(count, self.n_actions).cpu().numpy().astype(np.float64)

    def _act(self, observations: np.ndarray, masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Greedy actions and their values (the state values ``v(s)``)."""
        values = self.afterstate_values(observations)
        greedy = masked_argmax(values, masks)
        return greedy, values[np.arange(len(values)), greedy]

    def greedy(self, observations: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """The allowed act of highest afterstate value in each row."""
        return self._act(observations, masks)[0]

    def begin(self) -> None:
        """Start a rollout from the current weights."""
        assert self._observations is not None
        self._rollout = Rollout(self.config.rollout_steps, self.env.num_envs)
        self._greedy, self._values = self._act(self._observations, self._masks)

    def behave(self, observations: np.ndarray, masks: np.ndarray | None, done: int, total: int) -> np.ndarray:
        """Learn from a full rollout, then act epsilon-greedily and note each act's afterstate and greediness.

        The greedy acts are those computed after the previous step: a rollout is collected with
        the weights it started with.
        """
        if self._rollout.full():
            self._learn_rollout()
        greedy = self._greedy
        actions = epsilon_greedy(
            self.rng, self.epsilon(done, total), lambda: greedy, self.n_actions, len(observations), masks
        )
        rollout = self._rollout
        rollout.greedy[len(rollout)] = actions == greedy
        rollout.afterstates.append(self.afterstate(observations, actions))
        return actions

    def observe(self, step: Step) -> None:
        """Note the step's outcome and the next observations' greedy acts and values."""
        rollout, t = self._rollout, len(self._rollout) - 1
        rollout.rewards[t], rollout.stops[t], rollout.ended[t], rollout.valid[t] = (
            step.rewards,
            step.stops,
            step.ended,
            step.valid,
        )
        self._greedy, self._values = self._act(step.next_observations, step.next_masks)
        rollout.next_values[t] = self._values

    def training_scalars(self, done: int, total: int) -> dict[str, float]:
        """Adds ``train/loss`` (the last gradient step's Huber loss) and ``train/v_mean`` (mean value of the slots)."""
        scalars = super().training_scalars(done, total)
        if self.loss is not None:
            scalars["train/loss"] = float(self.loss)
        scalars["train/v_mean"] = float(self._values.mean())
        return scalars

    def end(self) -> None:
        """Learn from the rollout collected so far."""
        if len(self._rollout):
            self._learn_rollout()

    def _learn_rollout(self) -> None:
        """Fit the values of the rollout's afterstates to its lambda-returns; start a new rollout."""
        rollout, config, steps = self._rollout, self.config, len(self._rollout)
        targets = lambda_returns(
            rollout.rewards[:steps],
            rollout.next_values[:steps],
            rollout.stops[:steps],
            rollout.ended[:steps],
            config.gamma,
            config.td_lambda,
            rollout.greedy[:steps] if config.cut_traces else None,
        )
        valid = rollout.valid[:steps]
        self._fit(np.stack(rollout.afterstates)[valid], targets[valid])
        self._rollout = Rollout(config.rollout_steps, self.env.num_envs)

    def _fit(self, afterstates: np.ndarray, targets: np.ndarray) -> None:
        config = self.config
        inputs = torch.from_numpy(afterstates).to(self.device)
        goals = torch.from_numpy(targets.astype(np.float32)).to(self.device)
        for _ in range(config.epochs):
            # Drawn from the CPU generator, so a CUDA run shuffles exactly as a CPU run does.
            order = torch.randperm(len(inputs), generator=self.generator, device="cpu").to(self.device)
            for begin in range(0, len(order), config.minibatch_size):
                chosen = order[begin : begin + config.minibatch_size]
                self.loss = update(self.v, self.optimizer, inputs[chosen], goals[chosen], config.max_grad_norm)
        self.check_finite()  # once a rollout: one host sync among the rollout's many
