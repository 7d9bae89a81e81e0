"""``sb3-a2c``, ``sb3-ppo``, ``sb3-dqn``: Stable-Baselines3 through one adapter.

:class:`~nlp_envs.sb3.CoreVecEnv` (public, in :mod:`nlp_envs.sb3`) presents our native batched env
as an SB3 ``VecEnv`` without a Python env per copy, with SB3's same-step autoreset and seeding
rule. On an env with action masks it can hand SB3 ``{"observation", "action_mask"}`` dicts, which
the masked A2C, PPO and DQN of :mod:`nlp_agents.sb3_masking` read, so that these agents honour the
masks too.

:class:`SB3Agent` wraps any SB3 (or sb3-contrib) algorithm as an nlp-envs agent. SB3 seeds and
draws from the global ``random``/``numpy``/``torch`` generators; the adapter swaps its own copies
of those states in around every SB3 call, so the caller's global state is left untouched and the
agent stays reproducible from its seed. Saving stores the policy's ``state_dict`` and our JSON
config (never SB3's pickle-bearing zip).
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import inspect
import json
import math
import operator
import random as python_random
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.logger import Logger as SB3Logger

from nlp_agents.base import (
    MAX_COUNT,
    MAX_SIZE,
    Callback,
    DivergedError,
    HyperparameterError,
    Range,
    UnsupportedEnvError,
    build_from_file,
    check_action_masks,
    check_memory,
    check_saved_tensors,
    check_seed,
    check_timesteps,
    check_vector_env,
    cpu_count,
    diverged,
    env_signature,
    first_nonfinite,
    has_masks,
    read_agent_file,
    resolve_device,
    save_agent_file,
)
from nlp_agents.logger import NULL_LOGGER, EpisodeLog, Logger
from nlp_agents.networks import TorchThreads
from nlp_agents.sb3_masking import MaskedActorCriticPolicy, MaskedDQN, MaskedDQNPolicy, masked_observation
from nlp_envs.arguments import fits_annotation, signature, type_name
from nlp_envs.core import allowed_acts
from nlp_envs.sb3 import CoreVecEnv, NotNativeEnvError

CHECK_STEPS = 1024
"""Env steps between checks that the policy's weights are finite (at the end of a rollout)."""

RANGES: dict[str, Range] = {
    "learning_rate": Range(0.0, low_open=True),
    "gamma": Range(0.0, 1.0),
    "gae_lambda": Range(0.0, 1.0),
    "tau": Range(0.0, 1.0),
    "exploration_fraction": Range(0.0, 1.0),
    "exploration_initial_eps": Range(0.0, 1.0),
    "exploration_final_eps": Range(0.0, 1.0),
    "max_grad_norm": Range(0.0, low_open=True),
    "ent_coef": Range(0.0),
    "vf_coef": Range(0.0),
    "clip_range": Range(0.0, low_open=True),
    "clip_range_vf": Range(0.0, low_open=True),
    "target_kl": Range(0.0, low_open=True),
    "rms_prop_eps": Range(0.0, low_open=True),
    "n_steps": Range(1, MAX_SIZE),
    "batch_size": Range(1, MAX_SIZE),
    "buffer_size": Range(1, MAX_SIZE),
    "n_epochs": Range(1, MAX_SIZE),
    "train_freq": Range(1, MAX_SIZE),  # an int, or [n, "step"/"episode"] checked item by item
    "gradient_steps": Range(-1, MAX_SIZE),  # -1: as many as env steps collected
    "learning_starts": Range(0, MAX_COUNT),
    "target_update_interval": Range(1, MAX_COUNT),
    "torch_threads": Range(0, cpu_count),
    "stats_window_size": Range(1, MAX_SIZE),
    "sde_sample_freq": Range(-1, MAX_COUNT),
    "policy_kwargs.net_arch": Range(1, MAX_SIZE),  # every layer width, in a list or in {"pi": [...], "vf": [...]}
    "policy_kwargs.n_quantiles": Range(1, MAX_SIZE),
}
"""The accepted values of SB3's numeric hyper-parameters (names SB3's algorithms share).

A dotted name is a key of a table hyper-parameter (``policy_kwargs.net_arch``).
"""

CONTINUOUS_ONLY: dict[str, tuple[Any, str]] = {
    "use_sde": (False, "is generalized State-Dependent Exploration, which needs continuous actions"),
}
"""Options that only work with continuous actions: ``name -> (the only accepted value, why)``."""

SEED_LIMIT = 2**32 - 1
"""SB3 seeds NumPy's legacy generator, which takes seeds up to 2**32 - 1."""

_PASSED_BY_SB3 = {
    "observation_space",
    "action_space",
    "lr_schedule",
    "use_sde",
    "buffer_size",
    "device",
    "n_envs",
    "gamma",
    "gae_lambda",
    "optimize_memory_usage",
}
"""Constructor arguments of policies and buffers that the algorithm passes itself (not in ``*_kwargs``)."""

_NAMED = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _nonfinite_numbers(value: Any) -> bool:
    """Whether a JSON-like value holds a NaN or an infinity anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_nonfinite_numbers(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_nonfinite_numbers(item) for item in value)
    return False


def _numbers(value: Any) -> Iterator[Any]:
    """Every number in a nested JSON-like value (for range checks of tables such as ``net_arch``)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)
    else:
        yield value


def _json_annotation(parameter: inspect.Parameter) -> Any:
    """What a JSON value given for ``parameter`` must fit: its annotation without the callable options.

    A schedule (``float | Callable``) cannot come from JSON, so only its other options are shown and
    accepted; a parameter without an annotation is typed by its default where that is a plain value.
    """
    kind = parameter.annotation
    if kind is inspect.Parameter.empty:
        default = parameter.default
        return type(default) if isinstance(default, (bool, int, float, str)) else inspect.Parameter.empty
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    kept = [option for option in options if typing.get_origin(option) is not collections.abc.Callable]
    if len(kept) == len(options) or not kept:
        return kind
    return functools.reduce(operator.or_, kept)


def _has_tuple_option(kind: Any) -> bool:
    """Whether an annotation is, or has as a union option, a fixed-length ``tuple[...]``."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    return any(typing.get_origin(option) is tuple for option in options)


class _Bridge(BaseCallback):
    """Calls our ``callback(agent, timesteps)`` from SB3 (``False`` stops training) and checks the weights.

    With a logger (``SB3Agent.set_logger``) it also feeds the episodes that end to the agent's
    :class:`~nlp_agents.logger.EpisodeLog` and writes every ``logger.interval`` env steps.
    """

    def __init__(self, agent: SB3Agent, callback: Callback | None) -> None:
        super().__init__()
        self.checked_at = 0
        self.log = agent._episode_log
        self.agent = agent
        self.user_callback = callback if self.log is None or callback is None else self.log.timed(callback)

    def _on_training_start(self) -> None:
        if self.log is not None:
            self.log.start(int(self.model.num_timesteps))

    def _on_rollout_end(self) -> None:
        if self.model.num_timesteps - self.checked_at >= CHECK_STEPS:
            self.checked_at = self.model.num_timesteps
            self.agent.check_finite()

    def _on_step(self) -> bool:
        self.agent.num_timesteps = steps = int(self.model.num_timesteps)
        if self.log is not None:
            self._log_step(self.log, steps)
        if self.user_callback is None:
            return True
        return self.user_callback(self.agent, self.agent.num_timesteps) is not False

    def _log_step(self, log: EpisodeLog, steps: int) -> None:
        """Add the episodes that ended at this step (CoreVecEnv's infos); write when due."""
        dones = self.locals["dones"]
        if dones.any():
            infos = [self.locals["infos"][slot] for slot in np.flatnonzero(dones)]
            log.add_episodes(
                [info["episode"]["r"] for info in infos],
                [info["episode"]["l"] for info in infos],
                {name: [info[name] for info in infos] for name in log.metric_names},
            )
        if log.due(steps):
            log.write(steps, self.agent.training_scalars())

    def _on_training_end(self) -> None:
        if self.log is not None:
            self.log.finish(int(self.model.num_timesteps), self.agent.training_scalars)


class _LatestValues(KVWriter):
    """An SB3 output format that keeps the last value of each numeric key SB3 dumped (for our logger)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Keep the numeric values."""
        for key, value in key_values.items():
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                self.values[key] = float(value)

    def close(self) -> None:
        """Nothing to release."""


_RESERVED = {"self", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}


class SB3Agent:
    """An SB3 algorithm as an nlp-envs agent; subclasses set ``name`` and :meth:`algorithm`.

    Hyper-parameters are the algorithm's constructor arguments (``policy`` defaults to
    ``"MlpPolicy"``) and must be JSON values (numbers, strings, lists, dicts) so that saving works.
    On an env with action masks, an algorithm with a :meth:`masked_variant` honours them (with
    ``policy="MlpPolicy"``); a ``maskable`` one reads them from ``action_masks()`` itself.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    maskable: ClassVar[bool] = False
    heads: ClassVar[int] = 1
    """Outputs per action of the policy network (QR-DQN: the default number of quantiles)."""

    @staticmethod
    def algorithm() -> type:
        """The SB3 algorithm class."""
        raise NotImplementedError

    @staticmethod
    def masked_variant() -> tuple[type, type] | None:
        """``(algorithm, policy)`` that honour masks through the adapter's Dict observations, if any."""
        return None

    @classmethod
    def accepted(cls) -> dict[str, inspect.Parameter]:
        """The accepted hyper-parameters by name.

        The algorithm's constructor arguments and ``torch_threads`` (CPU threads while SB3 runs, 1 by
        default: fastest for small nets; 0 keeps torch's setting).
        """
        parameters = dict(signature(cls.algorithm()).parameters)
        parameters["torch_threads"] = inspect.Parameter("torch_threads", inspect.Parameter.KEYWORD_ONLY, default=1)
        return {
            name: p
            for name, p in parameters.items()
            if name not in _RESERVED and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    @classmethod
    def check_hyperparams(cls, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
        """Check hyper-parameters without an env; return them merged over the defaults.

        Each value must fit the algorithm's annotation as a JSON value (bools are not numbers, a
        ``*_kwargs`` must be a table, a ``*_class`` a class), be finite, lie in its :data:`RANGES`
        entry and be JSON (so that saving works); ``policy`` must be one of the algorithm's policy
        names and options for continuous actions (:data:`CONTINUOUS_ONLY`) keep their defaults. The
        content of ``policy_kwargs`` and ``X_buffer_kwargs`` is checked the same way against the
        policy's or buffer's constructor (names, types, ``RANGES["policy_kwargs.net_arch"]``...).

        Raises:
            HyperparameterError: one line naming the hyper-parameter, what is wrong and what is accepted.
        """
        accepted = cls.accepted()
        listing = ", ".join(
            f"{name}={'MlpPolicy' if name == 'policy' else p.default!r}" for name, p in accepted.items()
        )
        unknown = sorted(set(hyperparams) - set(accepted))
        if unknown:
            raise HyperparameterError(
                f"{cls.name}: unknown hyper-parameter(s) {', '.join(unknown)}. Accepted: {listing}."
            )
        merged = {"policy": "MlpPolicy", "torch_threads": 1, **cls.defaults, **hyperparams}
        for name, value in merged.items():
            cls._check_value(name, value, _json_annotation(accepted[name]), f" Accepted: {listing}.")
        aliases = getattr(cls.algorithm(), "policy_aliases", {})
        if merged["policy"] not in aliases:
            raise HyperparameterError(
                f"{cls.name}: Stable-Baselines3 refused these hyper-parameters: policy={merged['policy']!r} is not "
                f"a policy of {cls.algorithm().__name__}; expected one of {', '.join(map(repr, aliases))} "
                "('MlpPolicy' for these envs)."
            )
        for name, (value, reason) in CONTINUOUS_ONLY.items():
            if name in merged and merged[name] != value:
                raise HyperparameterError(
                    f"{cls.name}: hyper-parameter {name}={merged[name]!r} {reason}; nlp-envs actions are discrete, "
                    f"so leave {name}={value!r}."
                )
        for name, target in cls._kwargs_targets(aliases[merged["policy"]]).items():
            if isinstance(merged.get(name), dict):
                cls._check_table(name, merged[name], target)
        # JSON has no tuples: a list given for a tuple option (train_freq=[4, "episode"]) becomes one.
        return {
            name: tuple(value) if isinstance(value, list) and _has_tuple_option(accepted[name].annotation) else value
            for name, value in merged.items()
        }

    @classmethod
    def _check_value(cls, name: str, value: Any, kind: Any, accepted: str = "") -> None:
        """Type (as JSON), finiteness, :data:`RANGES` and JSON-ness of one value; ``name`` may be dotted."""
        if kind is not inspect.Parameter.empty and not fits_annotation(value, kind):
            raise HyperparameterError(
                f"{cls.name}: hyper-parameter {name}={value!r} has type {type(value).__name__}; expected "
                f"{type_name(kind)}.{accepted}"
            )
        if _nonfinite_numbers(value):
            raise HyperparameterError(
                f"{cls.name}: hyper-parameter {name}={value!r} is not finite (NaN or inf); give finite numbers."
            )
        if name in RANGES:
            RANGES[name].check(name, list(_numbers(value)) if isinstance(value, dict) else value, cls.name)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise HyperparameterError(
                f"{cls.name}: hyper-parameter {name}={value!r} is not a JSON value (numbers, strings, lists, "
                "dicts), so the agent could not be saved; pass names instead of classes."
            ) from None

    @classmethod
    def _kwargs_targets(cls, policy: type) -> dict[str, type]:
        """``{"policy_kwargs": policy class, "X_buffer_kwargs": the buffer class X_buffer_class names}``."""
        targets = {"policy_kwargs": policy}
        for name, parameter in signature(cls.algorithm()).parameters.items():
            if name.endswith("_buffer_class"):
                classes = [
                    typing.get_args(option)[0]
                    for option in typing.get_args(parameter.annotation) or (parameter.annotation,)
                    if typing.get_origin(option) is type
                ]
                if classes and isinstance(classes[0], type):
                    targets[name.removesuffix("_class") + "_kwargs"] = classes[0]
        return targets

    @classmethod
    def _check_table(cls, name: str, table: dict[str, Any], target: type) -> None:
        """Check the keys and values of a ``*_kwargs`` table against ``target``'s constructor."""
        parameters: dict[str, inspect.Parameter] = {}
        for klass in target.__mro__:  # a subclass taking ``**kwargs`` passes them on to its parent
            if klass is object:
                break
            found = signature(vars(klass).get("__init__", object.__init__)).parameters
            parameters = {**{key: p for key, p in found.items() if p.kind in _NAMED}, **parameters}
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in found.values()):
                break
        allowed = sorted(set(parameters) - _PASSED_BY_SB3 - {"self"})
        for key, value in table.items():
            if key not in allowed:
                raise HyperparameterError(
                    f"{cls.name}: hyper-parameter {name} has no key {key!r} ({target.__name__} does not take it or "
                    f"Stable-Baselines3 sets it); accepted keys: {', '.join(allowed) or '(none)'}."
                )
            cls._check_value(f"{name}.{key}", value, _json_annotation(parameters[key]))

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        self.env = check_vector_env(env, self.name)
        self.n_actions = int(self.env.single_action_space.n)  # type: ignore[attr-defined]  # checked Discrete
        self.seed = check_seed(seed, self.name)
        if self.seed > SEED_LIMIT:
            raise HyperparameterError(f"{self.name}: seed must be at most {SEED_LIMIT} (2**32 - 1), got {seed!r}.")
        self.hyperparams = copy.deepcopy(dict(hyperparams))  # SB3 edits policy_kwargs in place
        merged = copy.deepcopy(self.check_hyperparams(hyperparams))
        self.device = resolve_device(device, self.name)
        policy, algorithm, variant = merged.pop("policy"), self.algorithm(), self.masked_variant()
        self.masks_in_observation = False
        if variant is not None and not self.maskable and policy == "MlpPolicy" and has_masks(self.env):
            self.masks_in_observation = True
            algorithm, policy = variant
        try:
            self.vec_env = CoreVecEnv(env, mask_observations=self.masks_in_observation)
        except NotNativeEnvError as error:
            raise UnsupportedEnvError(f"{self.name}: {error}") from None
        self.vec_env.seed(self.seed)
        self._states = _seeded_global_states(self.seed)
        self.num_timesteps = 0
        self.logger: Logger = NULL_LOGGER
        self._episode_log: EpisodeLog | None = None
        self._sb3_values = _LatestValues()
        self.threads = TorchThreads(merged.pop("torch_threads"), self.device)
        check_memory(self.name, self.memory_needs(merged), self.device)
        with self._own_rngs():
            try:
                self.model = algorithm(policy, self.vec_env, seed=self.seed, device=self.device, verbose=0, **merged)
            except (AssertionError, ValueError, TypeError, KeyError) as error:
                # What SB3 says rarely names the argument: name the ones the user gave.
                detail = " ".join(str(error).split()) or type(error).__name__
                given = ", ".join(f"{name}={value!r}" for name, value in self.hyperparams.items()) or "the defaults"
                raise HyperparameterError(
                    f"{self.name}: Stable-Baselines3 refused these hyper-parameters ({given}): {detail}"
                ) from None
        # Without a logger of its own, every SB3 ``learn`` makes an empty ``SB3-<time>`` folder in the temp dir.
        self.set_logger(NULL_LOGGER)

    def memory_needs(self, hyperparams: Mapping[str, Any]) -> dict[str, float]:
        """Bytes the SB3 model will allocate, by what they are for (see :func:`~nlp_agents.base.check_memory`).

        The replay buffer (observations and next observations) or rollout buffer, and the policy's
        networks: their first layer reads the flattened observation (token ids one-hot encoded).
        """
        from stable_baselines3.common.preprocessing import get_flattened_obs_dim

        n, space = self.vec_env.num_envs, self.vec_env.observation_space
        parts = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
        observation = 0.0
        for part in parts:
            itemsize = part.dtype.itemsize if part.dtype is not None else 8
            observation += math.prod(part.shape or ()) * max(4, itemsize)
        needs: dict[str, float] = {}
        if "buffer_size" in hyperparams:
            rows = max(int(hyperparams["buffer_size"]) // n, 1) * n
            needs["replay buffer (buffer_size)"] = rows * (2 * observation + 8 + 12)
        if "n_steps" in hyperparams:
            needs["rollout buffer (n_steps)"] = float(hyperparams["n_steps"]) * n * (observation + 8 * 6)
        policy_kwargs = hyperparams.get("policy_kwargs") or {}
        arch = policy_kwargs.get("net_arch", [64, 64]) if isinstance(policy_kwargs, dict) else [64, 64]
        widths = [w for w in (arch.get("pi", arch) if isinstance(arch, dict) else arch) if isinstance(w, int)]
        heads = policy_kwargs.get("n_quantiles", self.heads) if isinstance(policy_kwargs, dict) else self.heads
        sizes = [get_flattened_obs_dim(self.env.single_observation_space), *widths, self.n_actions * int(heads)]
        parameters = sum(float(a + 1) * b for a, b in zip(sizes, sizes[1:], strict=False))
        # two networks (actor and critic, or online and target), each with gradients and Adam moments
        needs["networks (policy_kwargs.net_arch; one-hot observations)"] = 2 * 4 * 4 * parameters
        return needs

    @contextmanager
    def _own_rngs(self) -> Iterator[None]:
        """Run SB3 with this agent's copies of the global RNG states; restore the caller's after."""
        caller = _global_states()
        _set_global_states(self._states)
        try:
            with self.threads:
                yield
        finally:
            self._states = _global_states()
            _set_global_states(caller)

    def set_logger(self, logger: Logger) -> None:
        """Write scalars to ``logger`` (see :mod:`nlp_agents.logger`) every ``logger.interval`` env steps of ``learn``.

        The episodes' returns, lengths and task metrics and the steps per second are ours (the same
        tags as the built-in agents); the ``train/*`` values are SB3's own (its losses, and the
        others it records), with ``train/learning_rate``, ``train/epsilon`` (DQN) and ``train/v_mean``
        (A2C, PPO) or ``train/q_mean`` (DQN) read from the model.

        Raises:
            TypeError: ``logger`` is not a :class:`~nlp_agents.logger.Logger`.
        """
        if not isinstance(logger, Logger):
            raise TypeError(f"{self.name}: set_logger takes an nlp_agents.logger.Logger, got {type(logger).__name__}.")
        self.logger = logger
        self._episode_log = None
        self._sb3_values = _LatestValues()
        if logger.writes:
            self._episode_log = EpisodeLog(logger, self.env.num_envs, self.vec_env.metric_names)
        self.model.set_logger(SB3Logger(folder=None, output_formats=[self._sb3_values] if logger.writes else []))

    def training_scalars(self) -> dict[str, float]:
        """SB3's ``train/*`` values (the last dumped, updated by those recorded since) and the model's own figures."""
        model = self.model
        pending = {key: value for key, value in model.logger.name_to_value.items() if isinstance(value, (int, float))}
        scalars = {
            key: float(value)
            for key, value in {**self._sb3_values.values, **pending}.items()
            if key.startswith("train/")
        }
        scalars["train/learning_rate"] = float(model.policy.optimizer.param_groups[0]["lr"])
        if hasattr(model, "exploration_rate"):
            scalars["train/epsilon"] = float(model.exploration_rate)
        buffer = getattr(model, "rollout_buffer", None)
        if buffer is not None and (buffer.full or buffer.pos):
            scalars["train/v_mean"] = float(buffer.values[: buffer.buffer_size if buffer.full else buffer.pos].mean())
        if getattr(model, "_last_obs", None) is not None:
            with torch.no_grad():
                q_values = self.q_values(model.policy.obs_to_tensor(model._last_obs)[0])
            if q_values is not None:
                scalars["train/q_mean"] = float(q_values.max(dim=1).values.mean())
        return scalars

    def q_values(self, observations: Any) -> torch.Tensor | None:
        """``(n, n_actions)`` Q values of the model's network for observations as SB3 tensors them.

        None for an algorithm without a Q network (A2C, PPO); a value-based plugin whose network is
        not ``model.q_net`` overrides this, and ``train/q_mean`` follows.
        """
        q_net = getattr(self.model, "q_net", None)
        return None if q_net is None else q_net(observations)

    def learn(self, total_timesteps: int, callback: Callback | None = None) -> SB3Agent:
        """Train for ``total_timesteps`` env steps (all slots together); see :meth:`set_logger` for logging."""
        total_timesteps = check_timesteps(total_timesteps, self.name)
        with self._own_rngs():
            try:
                self.model.learn(total_timesteps, callback=_Bridge(self, callback), reset_num_timesteps=False)
            except DivergedError:
                raise
            except (ValueError, RuntimeError) as error:  # e.g. torch refusing NaN probabilities
                bad = self._first_nonfinite()
                if bad is None:
                    raise
                raise diverged(self.name, int(self.model.num_timesteps), bad) from error
        self.num_timesteps = int(self.model.num_timesteps)
        self.check_finite()
        return self

    def _first_nonfinite(self) -> str | None:
        return first_nonfinite({f"weight policy.{name}": value for name, value in self.model.policy.named_parameters()})

    def check_finite(self) -> None:
        """Raise :class:`~nlp_agents.base.DivergedError` if a weight of the policy is NaN or infinite."""
        bad = self._first_nonfinite()
        if bad is not None:
            raise diverged(self.name, int(self.model.num_timesteps), bad)

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Actions for a batch of observations, among the allowed ones where ``action_masks`` is given."""
        observations = np.asarray(observation)
        if observations.shape == tuple(self.env.single_observation_space.shape or ()):
            observations = observations[None]
        count = len(observations)
        action_masks = check_action_masks(action_masks, count, self.n_actions, self.name)
        if action_masks is not None:
            action_masks = allowed_acts(action_masks)
            if not (self.maskable or self.masks_in_observation or action_masks.all()):
                raise ValueError(
                    f"{self.name}: this agent reads no action masks (built on an env without masks, or with a policy "
                    "other than 'MlpPolicy'), so it cannot honour action_masks; build it with policy='MlpPolicy' on "
                    "the masked env."
                )
        kwargs = {"action_masks": action_masks} if self.maskable and action_masks is not None else {}
        inputs: np.ndarray | dict[str, np.ndarray] = observations
        if self.masks_in_observation:
            allowed = np.ones((count, self.n_actions), dtype=bool) if action_masks is None else action_masks
            inputs = masked_observation(observations, allowed)
        with self._own_rngs():
            actions, _ = self.model.predict(inputs, deterministic=deterministic, **kwargs)
        return np.asarray(actions, dtype=np.int64).reshape(count)

    def save(self, path: Any) -> Any:
        """Write the JSON config and the policy's weights to ``path``."""
        meta = {
            "agent": self.name,
            "config": self.hyperparams,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "env": env_signature(self.env),
        }
        return save_agent_file(path, meta, {f"policy.{k}": v for k, v in self.model.policy.state_dict().items()})

    @classmethod
    def load(cls, path: Any, env: Any, device: str = "auto") -> SB3Agent:
        """Rebuild the agent from ``path`` for ``env`` (no pickled code is run)."""
        meta, tensors = read_agent_file(path, cls.name, env)
        agent = build_from_file(path, meta, lambda **config: cls(env, seed=meta["seed"], device=device, **config))
        agent.model.policy.load_state_dict(
            check_saved_tensors(path, agent.model.policy.state_dict(), tensors, prefix="policy.")
        )
        agent.num_timesteps = int(meta.get("num_timesteps", 0))
        agent.model.num_timesteps = agent.num_timesteps
        return agent


def _global_states() -> tuple[Any, ...]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return python_random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def _set_global_states(states: tuple[Any, ...]) -> None:
    python_state, numpy_state, torch_state, cuda = states
    python_random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def _seeded_global_states(seed: int) -> tuple[Any, ...]:
    caller = _global_states()
    python_random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    states = _global_states()
    _set_global_states(caller)
    return states


class A2CAgent(SB3Agent):
    """``sb3-a2c``: Stable-Baselines3 A2C."""

    name = "sb3-a2c"

    @staticmethod
    def algorithm() -> type:
        """``stable_baselines3.A2C``."""
        from stable_baselines3 import A2C

        return A2C

    @staticmethod
    def masked_variant() -> tuple[type, type]:
        """A2C with :class:`~nlp_agents.sb3_masking.MaskedActorCriticPolicy`."""
        from stable_baselines3 import A2C

        return A2C, MaskedActorCriticPolicy


class PPOAgent(SB3Agent):
    """``sb3-ppo``: Stable-Baselines3 PPO (``n_steps=128`` by default, so short runs still update)."""

    name = "sb3-ppo"
    defaults: ClassVar[dict[str, Any]] = {"n_steps": 128, "batch_size": 64}

    @staticmethod
    def algorithm() -> type:
        """``stable_baselines3.PPO``."""
        from stable_baselines3 import PPO

        return PPO

    @staticmethod
    def masked_variant() -> tuple[type, type]:
        """PPO with :class:`~nlp_agents.sb3_masking.MaskedActorCriticPolicy`."""
        from stable_baselines3 import PPO

        return PPO, MaskedActorCriticPolicy


class DQNAgent(SB3Agent):
    """``sb3-dqn``: Stable-Baselines3 DQN with settings that learn these envs in tens of thousands of steps.

    SB3's own defaults (``train_freq=4``, ``learning_rate=1e-4``, ``exploration_fraction=0.1``,
    ``target_update_interval=10000``) stayed at or below random on NextWord-v0 and DialogueEasy-v0
    within 50k steps; here one update per vector step, a learning rate of 1e-3, exploration over
    30% of training and a target copied every 250 updates. Any of them can be passed as usual.
    """

    name = "sb3-dqn"
    defaults: ClassVar[dict[str, Any]] = {
        "learning_starts": 1000,
        "train_freq": 1,
        "learning_rate": 1e-3,
        "exploration_fraction": 0.3,
        "target_update_interval": 250,
        "buffer_size": 100_000,
    }

    @staticmethod
    def algorithm() -> type:
        """``stable_baselines3.DQN``."""
        from stable_baselines3 import DQN

        return DQN

    @staticmethod
    def masked_variant() -> tuple[type, type]:
        """:class:`~nlp_agents.sb3_masking.MaskedDQN` with :class:`~nlp_agents.sb3_masking.MaskedDQNPolicy`."""
        return MaskedDQN, MaskedDQNPolicy


__all__ = ["A2CAgent", "CoreVecEnv", "DQNAgent", "PPOAgent", "SB3Agent"]
