"""What the offline agents (``bc``, ``cql``) share: the dataset contract, its checks, and the learn loop.

The offline contract, the one change to the agent protocol (DESIGN.md, "Agent plugins"):

- The factory takes ``dataset=``: a :class:`nlp_envs.offline.Transitions`, or a Minari dataset id
  or a path (a ``str`` or ``Path``), which is handed to ``nlp_envs.offline.load_transitions``.
  ``nlp_agents.make("cql", env, dataset="nlp_envs/Dialogue/rule-v0")``. The dataset must fit
  ``env``: same env id (and the env kwargs it records), observations of the env's shape inside its
  space, acts inside the action space, action masks present exactly when the env has masks, and
  every logged act allowed by its mask; else :class:`DatasetError` names what differs.
- ``learn(n, callback=None)`` takes ``n`` gradient steps on batches drawn uniformly from the
  dataset; it never steps ``env`` (the env gives the spaces, and the scoring is online as for every
  agent). ``num_timesteps`` counts gradient steps, and ``callback(agent, num_timesteps)`` runs after
  each one (``False`` stops).
- The class attribute ``offline`` is True (False on every online agent); ``dataset_id`` and
  ``dataset_hash`` name the data learnt from ("" for a loaded agent or a dataset without them).
- A saved agent holds its weights only: ``load`` gives an agent that predicts without the dataset;
  calling ``learn`` on it without one raises :class:`DatasetError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from nlp_agents.base import (
    Callback,
    check_memory,
    check_timesteps,
    constructor_defaults,
    env_name,
    has_masks,
)
from nlp_agents.networks import NetworkAgent, storage_dtype
from nlp_envs.arguments import kwarg_text
from nlp_envs.offline import DatasetError, Transitions, load_transitions

CHECK_INTERVAL = 100
"""Gradient steps between checks that the loss and weights are finite (one host sync each)."""

IGNORED_ENV_KWARGS = frozenset({"num_envs", "vectorization_mode", "vector_kwargs", "render_mode"})
"""Env kwargs that do not change the task (how many slots, how they are vectorised, rendering)."""


UNCHANGED_TASK_KWARGS = frozenset({"info_text", "autoreset_mode"})
"""Env kwargs the agent's env may set although the dataset's did not: they change what infos carry and how
slots restart, not the task."""


def resolve_dataset(dataset: Any, agent: str) -> Transitions:
    """``dataset`` as :class:`nlp_envs.offline.Transitions`: as it is, or loaded from a Minari id or a path.

    Raises:
        DatasetError: ``dataset`` is of another type, or cannot be loaded.
    """
    if isinstance(dataset, Transitions):
        return dataset
    if isinstance(dataset, (str, Path)):
        return load_transitions(dataset)
    raise DatasetError(
        f"{agent}: dataset= has type {type(dataset).__name__}; expected nlp_envs.offline.Transitions, a Minari "
        "dataset id or a path (str or pathlib.Path)."
    )


def check_transitions(data: Any, env: gym.vector.VectorEnv, agent: str) -> None:
    """Refuse transitions that do not fit ``env`` or are inconsistent, with a :class:`DatasetError` naming why.

    Checked: the env id and the env kwargs the data records against ``env``'s, and the kwargs ``env``
    sets that the data does not record against the preset (or default) the data was collected with
    (leaving out those that do not change the task: slots, rendering, infos, autoreset); every array's
    length and shape; observations inside the env's observation space; acts inside ``[0, n)``;
    finite rewards; boolean ends; masks present exactly when the env has masks, and each logged
    act allowed by its mask.
    """
    where = f"{agent}: dataset {data.dataset_id or '(unnamed)'}"
    if data.env_id != env_name(env):
        raise DatasetError(
            f"{where} was collected on {data.env_id!r}, but the agent's env is {env_name(env)!r}; make the agent "
            f"for a vector env of {data.env_id!r}, or use a dataset of {env_name(env)!r}."
        )
    spec = env.spec
    if spec is not None:
        registered = gym.spec(spec.id).kwargs if spec.id in gym.registry else {}
        for key, value in sorted(data.env_kwargs.items()):
            if key in IGNORED_ENV_KWARGS:
                continue
            have = spec.kwargs.get(key, registered.get(key))
            if kwarg_text(have) != kwarg_text(value):
                raise DatasetError(
                    f"{where} was collected with env kwarg {key}={value!r}, but the agent's env has {key}={have!r}; "
                    "make the env with the dataset's env_kwargs."
                )
        # The other way round: a kwarg the agent's env sets and the dataset does not, away from the
        # value the dataset's env had (its registered preset and limit, else the constructor's default).
        baseline = constructor_defaults(spec.id)
        if spec.id in gym.registry:
            baseline["max_episode_steps"] = gym.spec(spec.id).max_episode_steps
        baseline |= registered
        for key, have in sorted(spec.kwargs.items()):
            if key in IGNORED_ENV_KWARGS or key in UNCHANGED_TASK_KWARGS or key in data.env_kwargs:
                continue
            value = baseline.get(key, have)
            if kwarg_text(have) != kwarg_text(value):
                raise DatasetError(
                    f"{where} was collected with env kwarg {key}={value!r} (the default), but the agent's env has "
                    f"{key}={have!r}; make the env with the dataset's env_kwargs, or collect a dataset with "
                    f"{key}={have!r}."
                )
    n = len(data.observations)
    if n == 0:
        raise DatasetError(f"{where} holds no transitions; collect some episodes first.")
    space, n_actions = env.single_observation_space, int(env.single_action_space.n)  # type: ignore[attr-defined]
    shape = tuple(space.shape or ())
    arrays = {
        "observations": (data.observations, (n, *shape)),
        "next_observations": (data.next_observations, (n, *shape)),
        "actions": (data.actions, (n,)),
        "rewards": (data.rewards, (n,)),
        "terminations": (data.terminations, (n,)),
        "truncations": (data.truncations, (n,)),
    }
    masked = has_masks(env)
    for name in ("action_masks", "next_action_masks"):
        value = getattr(data, name)
        if (value is not None) != masked:
            raise DatasetError(
                f"{where} {'lacks' if masked else 'has'} {name}, but the env {'has' if masked else 'has no'} action "
                f"masks; collect the dataset {'with' if masked else 'without'} the env's masks."
            )
        if value is not None:
            arrays[name] = (value, (n, n_actions))
    for name, (value, expected) in arrays.items():
        if not isinstance(value, np.ndarray) or value.shape != expected:
            raise DatasetError(
                f"{where}: {name} has shape {getattr(value, 'shape', type(value).__name__)}; expected {expected} "
                f"({n} transitions of {env_name(env)})."
            )
    for name in ("terminations", "truncations", "action_masks", "next_action_masks"):
        value = getattr(data, name)
        if value is not None and value.dtype != np.bool_:
            raise DatasetError(f"{where}: {name} has dtype {value.dtype}; expected bool.")
    for name in ("observations", "next_observations"):
        _check_observations(getattr(data, name), space, f"{where}: {name}")
    actions = data.actions
    if actions.dtype.kind not in "iu" or actions.min() < 0 or actions.max() >= n_actions:
        raise DatasetError(
            f"{where}: actions must be integers in [0, {n_actions}) for {env.single_action_space}, got dtype "
            f"{actions.dtype} with values in [{actions.min()}, {actions.max()}]."
        )
    if data.rewards.dtype.kind not in "fiu" or not np.isfinite(data.rewards).all():
        raise DatasetError(f"{where}: rewards must be finite numbers (dtype {data.rewards.dtype}).")
    if data.action_masks is not None:
        from nlp_envs.core import allowed_acts  # here: import nlp_envs loads the plugins

        forbidden = ~allowed_acts(data.action_masks)[np.arange(n), actions]
        if forbidden.any():
            row = int(np.flatnonzero(forbidden)[0])
            raise DatasetError(
                f"{where}: {int(forbidden.sum())} logged acts are forbidden by their action mask (first: row {row}, "
                f"act {int(actions[row])}); the masks or the acts are corrupt."
            )


def _check_observations(values: np.ndarray, space: gym.Space, what: str) -> None:
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        high = np.asarray(getattr(space, "nvec", getattr(space, "n", 2)))
        if values.dtype.kind not in "iub" or (values < 0).any() or (values >= high).any():
            raise DatasetError(
                f"{what} must be integers inside {space} (dtype {values.dtype}); the dataset is of another env "
                "version or corrupt."
            )
    elif isinstance(space, gym.spaces.Box):
        if values.dtype.kind != "f" or not np.isfinite(values).all():
            raise DatasetError(f"{what} must be finite floats for {space}, got dtype {values.dtype}.")
        if (values < space.low).any() or (values > space.high).any():
            raise DatasetError(f"{what} lie outside {space}; the dataset is of another env version or corrupt.")


class OfflineAgent(NetworkAgent):
    """An agent that learns from logged :class:`~nlp_envs.offline.Transitions`, not from stepping its env.

    A subclass builds its network(s) and optimiser after calling this ``__init__`` (its config
    has ``batch_size``, ``epsilon_end`` and ``torch_threads``), and implements
    :meth:`update` (one gradient step on a batch; it sets ``self.loss``) and
    :meth:`memory_needs`. :meth:`learn` runs the steps, checks divergence every
    :data:`CHECK_INTERVAL` steps and at the end, and calls :meth:`after_step` (target copies).
    """

    offline = True
    bootstraps: ClassVar[bool] = True
    """Whether the update bootstraps from ``s'`` (the config then has ``gamma`` and ``bootstrap_truncated``)."""

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", dataset: Any = None, **hyperparams: Any):
        super().__init__(env, seed=seed, device=device, **hyperparams)
        self.masked = has_masks(env)
        self.data: dict[str, torch.Tensor] | None = None
        self.dataset_id = ""
        self.dataset_hash = ""
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        transitions = None if dataset is None else resolve_dataset(dataset, self.name)
        if transitions is not None:
            check_transitions(transitions, env, self.name)
        check_memory(self.name, {**self.memory_needs(), **self._dataset_bytes(transitions)}, self.device)
        if transitions is not None:
            self.data = self._to_device(transitions)
            self.dataset_id, self.dataset_hash = transitions.dataset_id, transitions.dataset_hash

    def memory_needs(self) -> dict[str, float]:
        """Bytes the networks and an update batch allocate, by what sets them (see ``check_memory``)."""
        raise NotImplementedError

    def _dataset_bytes(self, transitions: Any) -> dict[str, float]:
        if transitions is None:
            return {}
        space = self.env.single_observation_space
        observation = math.prod(space.shape or ()) * storage_dtype(space).itemsize
        masks = self.n_actions if transitions.action_masks is not None else 0
        row = (observation + 8 + masks) * (2 if self.bootstraps else 1) + (8 if self.bootstraps else 0)
        return {"dataset on the device": float(len(transitions)) * row}

    def _to_device(self, transitions: Any) -> dict[str, torch.Tensor]:
        """The dataset as device tensors: compact observations, int64 acts, masks, and what bootstraps need.

        An agent that bootstraps also gets the next observations and masks, the rewards and the
        discounts (0 where the return stops: terminations, and truncations unless bootstrap_truncated).
        """
        dtype, device = storage_dtype(self.env.single_observation_space), self.device
        data = {
            "observations": torch.as_tensor(transitions.observations).to(device, dtype),
            "actions": torch.as_tensor(transitions.actions).to(device, torch.int64),
        }
        if transitions.action_masks is not None:
            data["masks"] = torch.as_tensor(transitions.action_masks).to(device)
        if self.bootstraps:
            config = self.config
            ends = transitions.terminations | transitions.truncations
            stops = torch.as_tensor(transitions.terminations if config.bootstrap_truncated else ends).to(device)
            data["next_observations"] = torch.as_tensor(transitions.next_observations).to(device, dtype)
            data["returns"] = torch.as_tensor(transitions.rewards).to(device, torch.float32)
            data["discounts"] = torch.where(stops, 0.0, config.gamma).to(torch.float32)
            if transitions.next_action_masks is not None:
                data["next_masks"] = torch.as_tensor(transitions.next_action_masks).to(device)
        return data

    def sample(self) -> dict[str, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly (with replacement) from the dataset, weights 1."""
        assert self.data is not None
        rows = torch.randint(
            0, len(self.data["actions"]), (self.config.batch_size,), generator=self.generator, device=self.device
        )
        batch = {name: values[rows] for name, values in self.data.items()}
        batch["weights"] = torch.ones(len(rows), device=self.device)
        return batch

    def update(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One gradient step on ``batch``; sets ``self.loss`` (no host sync)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each gradient step (``num_timesteps`` counts it): target copies and the like."""

    def last_loss(self) -> float | None:
        """The last gradient step's loss, for the logger (one host sync); None before the first step."""
        raise NotImplementedError

    def _write_scalars(self, steps: int, seconds: float) -> None:
        """Write ``train/loss``, ``train/learning_rate`` and the gradient steps per second since the last write."""
        scalars = self.training_scalars(0, 0)
        loss = self.last_loss()
        if loss is not None:
            scalars["train/loss"] = loss
        if seconds > 0:
            scalars["time/gradient_steps_per_second"] = steps / seconds
        self.logger.scalars(scalars, self.num_timesteps)

    def learn(self, total_timesteps: int, callback: Callback | None = None) -> OfflineAgent:
        """Take ``total_timesteps`` gradient steps on the dataset (the env is not stepped).

        Args:
            total_timesteps: gradient steps to take.
            callback: ``callback(agent, gradient_steps_done)`` after each step; ``False`` stops.

        Returns:
            The agent.

        Raises:
            DatasetError: the agent has no dataset (it was loaded, or made without ``dataset=``).
            DivergedError: the loss or a weight became non-finite.
        """
        steps = check_timesteps(total_timesteps, self.name)
        if self.data is None:
            raise DatasetError(
                f"{self.name}: learns from a logged dataset and has none; make it with dataset=<Transitions, "
                "Minari dataset id or path> (nlp-envs train: --hyperparams '{\"dataset\": ID}'); a loaded agent "
                "predicts without one but cannot learn."
            )
        logging, interval = self.logger.writes, self.logger.interval
        with self.threads():
            written, since = self.num_timesteps, time.perf_counter()
            for _ in range(steps):
                self.update(self.sample())
                self.num_timesteps += 1
                if self.num_timesteps % CHECK_INTERVAL == 0:
                    self.check_finite()
                self.after_step()
                if logging and self.num_timesteps % interval == 0:
                    self._write_scalars(self.num_timesteps - written, time.perf_counter() - since)
                    written, since = self.num_timesteps, time.perf_counter()
                if callback is not None and callback(self, self.num_timesteps) is False:
                    break
            self.check_finite()
            if logging and self.num_timesteps > written:
                self._write_scalars(self.num_timesteps - written, time.perf_counter() - since)
            if logging:  # the writer's thread flushes on a timer: what learn wrote is on disk when it returns
                self.logger.flush()
        return self
