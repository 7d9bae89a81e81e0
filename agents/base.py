"""What the built-in agents share: hyper-parameter checking, env checks, masks, the file format.

An agent file is one ``torch.save`` of ``{"nlp_envs_agent": <JSON text>, "tensors": {name: tensor}}``:
the JSON holds the agent name, its config, the seed and the env it was trained on; the tensors are
its weights. It is read with ``torch.load(..., weights_only=True)``, which never runs pickled code.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

FORMAT = "nlp-envs-agent/1"

Callback = Callable[[Any, int], Any]
"""``callback(agent, timesteps_done)``, called during ``learn``; returning ``False`` stops training."""


class HyperparameterError(ValueError):
    """An unknown or ill-typed hyper-parameter."""


class UnsupportedEnvError(ValueError):
    """The agent cannot work with this env's spaces."""


class AgentFileError(ValueError):
    """A saved agent file that cannot be loaded here (not ours, another agent or another env)."""


def describe_fields(config_cls: type) -> str:
    """``name: type = default`` for every field of a config dataclass, comma-separated."""
    hints = typing.get_type_hints(config_cls)
    parts = []
    for item in dataclasses.fields(config_cls):
        parts.append(f"{item.name}: {_type_name(hints[item.name])} = {item.default!r}")
    return ", ".join(parts)


def _type_name(kind: Any) -> str:
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).replace("typing.", "")


def _coerce(name: str, value: Any, kind: Any, agent: str) -> Any:
    """Return ``value`` as ``kind`` if it is one (ints are floats, lists are tuples), else raise."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(kind):
            try:
                return _coerce(name, value, option, agent)
            except HyperparameterError as error:
                errors.append(error)
        raise errors[-1]
    if kind is type(None):
        if value is None:
            return None
    elif origin is typing.Literal:
        if value in typing.get_args(kind):
            return value
        raise HyperparameterError(f"{agent}: {name}={value!r} is not one of {typing.get_args(kind)}.")
    elif origin is tuple:
        item_kind = typing.get_args(kind)[0]
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(name, item, item_kind, agent) for item in value)
    elif kind is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise HyperparameterError(
        f"{agent}: hyper-parameter {name}={value!r} has type {type(value).__name__}; expected {_type_name(kind)}."
    )


def build_config(config_cls: type, hyperparams: Mapping[str, Any], agent: str) -> Any:
    """Build the agent's config dataclass from keyword hyper-parameters, checking names and types.

    Args:
        config_cls: a dataclass; its fields are the accepted hyper-parameters. An optional
            ``validate(self)`` method checks ranges and raises ``ValueError``.
        hyperparams: the user's keyword arguments.
        agent: the agent name, for messages.

    Returns:
        The config instance.

    Raises:
        HyperparameterError: an unknown name or a value of the wrong type; the message lists the
            accepted hyper-parameters with their types and defaults.
    """
    hints = typing.get_type_hints(config_cls)
    names = {item.name for item in dataclasses.fields(config_cls)}
    unknown = sorted(set(hyperparams) - names)
    if unknown:
        raise HyperparameterError(
            f"{agent}: unknown hyper-parameter(s) {', '.join(unknown)}. Accepted: {describe_fields(config_cls)}."
        )
    values = {name: _coerce(name, value, hints[name], agent) for name, value in hyperparams.items()}
    config = config_cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as error:
            raise HyperparameterError(f"{agent}: {error}") from None
    return config


def check_vector_env(env: Any, agent: str) -> VectorEnv:
    """Return ``env`` if it is a Gymnasium ``VectorEnv`` with a ``Discrete`` action space, else raise."""
    if not isinstance(env, VectorEnv):
        raise UnsupportedEnvError(
            f"{agent}: agents take a gymnasium VectorEnv, got {type(env).__name__}. Make one with "
            "gym.make_vec(env_id, num_envs=8, vectorization_mode='vector_entry_point')."
        )
    if not isinstance(env.single_action_space, gym.spaces.Discrete):
        raise UnsupportedEnvError(
            f"{agent}: needs a Discrete action space, got {env.single_action_space} ({env_name(env)})."
        )
    return env


def env_name(env: Any) -> str:
    """The registered id of a (vector) env, or its class name."""
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    return spec.id if spec is not None else type(getattr(env, "unwrapped", env)).__name__


def check_seed(seed: Any, agent: str) -> int:
    """Return ``seed`` as an int >= 0, else raise."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise HyperparameterError(f"{agent}: seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def resolve_device(device: Any, agent: str) -> Any:
    """``"auto"`` is CUDA when available, else CPU; anything torch accepts otherwise; returns a ``torch.device``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise HyperparameterError(
            f"{agent}: device={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N' ({error})."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise HyperparameterError(f"{agent}: device={device!r} but CUDA is not available here; use 'cpu' or 'auto'.")
    return resolved


def action_masks(env: VectorEnv, infos: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """The ``(num_envs, n)`` mask of sensible acts: ``infos["action_mask"]``, else the env's, else None.

    None means every action is allowed (no mask, or a mask that is all True).
    """
    mask = None
    if infos is not None and "action_mask" in infos:
        mask = np.asarray(infos["action_mask"], dtype=bool)
    else:
        method = getattr(env.unwrapped, "action_masks", None)
        if method is not None:
            mask = np.asarray(method(), dtype=bool)
    if mask is None or mask.all():
        return None
    return mask


def has_masks(env: VectorEnv) -> bool:
    """Whether the env's task defines action masks (even if every act is allowed right now)."""
    from nlp_envs.core import TaskCore

    core = getattr(env.unwrapped, "core", None)
    if isinstance(core, TaskCore):
        return type(core).action_masks is not TaskCore.action_masks
    return hasattr(env.unwrapped, "action_masks")


def masked_argmax(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Row-wise argmax over allowed entries (lowest index on ties); rows with no allowed entry use all."""
    if mask is not None:
        from nlp_envs.core import allowed_acts  # here, not at the top: import nlp_envs loads the plugins

        values = np.where(allowed_acts(mask), values, -np.inf)
    return values.argmax(axis=1)


def random_actions(rng: np.random.Generator, n: int, count: int, mask: np.ndarray | None) -> np.ndarray:
    """Uniform actions in ``[0, n)``, or uniform over each row's allowed acts when ``mask`` is given."""
    if mask is None:
        return rng.integers(n, size=count)
    return masked_argmax(rng.random((count, n)), mask)


def linear_epsilon(step: int, total: int, start: float, end: float, fraction: float) -> float:
    """Epsilon decayed linearly from ``start`` to ``end`` over the first ``fraction * total`` steps."""
    span = max(1.0, fraction * total)
    return end + (start - end) * max(0.0, 1.0 - step / span)


def env_signature(env: VectorEnv) -> dict[str, str]:
    """What a saved agent must match: the env id and both single spaces (as text)."""
    return {
        "env_id": env_name(env),
        "observation_space": str(env.single_observation_space),
        "action_space": str(env.single_action_space),
    }


def save_agent_file(path: str | Path, meta: dict[str, Any], tensors: Mapping[str, Any]) -> Path:
    """Write ``meta`` (JSON-able) and ``tensors`` (torch tensors or numpy arrays) to ``path``."""
    import torch

    path = Path(path)
    payload = {
        "nlp_envs_agent": json.dumps({"format": FORMAT, **meta}, sort_keys=True),
        "tensors": {
            name: (torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value)
            .detach()
            .cpu()
            .clone()
            for name, value in tensors.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def read_agent_meta(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an agent file safely (``weights_only=True``); return ``(meta, tensors)``."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise AgentFileError(f"no agent file at {str(path)!r}; save one with agent.save(path).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise AgentFileError(
            f"{str(path)!r} is not an nlp-envs agent file (it could not be read as weights only: "
            f"{str(error).splitlines()[0]}). Files written by agent.save(path) can be loaded."
        ) from None
    if not isinstance(payload, dict) or "nlp_envs_agent" not in payload:
        raise AgentFileError(f"{str(path)!r} is not an nlp-envs agent file (no 'nlp_envs_agent' header).")
    meta = json.loads(payload["nlp_envs_agent"])
    if meta.get("format") != FORMAT:
        raise AgentFileError(f"{str(path)!r} has format {meta.get('format')!r}; this version reads {FORMAT!r}.")
    return meta, payload.get("tensors", {})


def read_agent_file(path: str | Path, agent: str, env: VectorEnv) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an agent file written by agent ``agent`` for an env like ``env``; else raise :class:`AgentFileError`."""
    meta, tensors = read_agent_meta(path)
    if meta.get("agent") != agent:
        raise AgentFileError(
            f"{str(path)!r} holds a {meta.get('agent')!r} agent, not {agent!r}; load it with "
            f"agents.load(path, env), which picks the right agent."
        )
    expected = env_signature(env)
    saved = meta.get("env", {})
    for key in ("env_id", "observation_space", "action_space"):
        if saved.get(key) != expected[key]:
            raise AgentFileError(
                f"{str(path)!r} was trained on {saved.get('env_id')!r} with {key} {saved.get(key)}, but this env "
                f"({expected['env_id']}) has {expected[key]}; load it with a vector env of "
                f"{saved.get('env_id')!r} and the same env kwargs."
            )
    return meta, tensors


class BaseAgent:
    """The shared shell of a built-in agent: checks inputs, keeps the RNG, saves and loads.

    Subclasses set ``name`` and ``Config`` and implement ``learn``, ``predict``, ``_tensors`` and
    ``_load_tensors``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    next_step_autoreset: ClassVar[bool] = True
    """Whether the agent's learning loop relies on NEXT_STEP autoreset (every nlp-envs env has it)."""

    def __init__(self, env: VectorEnv, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        self.env = check_vector_env(env, self.name)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if self.next_step_autoreset and mode != AutoresetMode.NEXT_STEP:
            raise UnsupportedEnvError(
                f"{self.name}: needs a vector env with NEXT_STEP autoreset (every nlp-envs env has it), got {mode}; "
                "for Gymnasium's SyncVectorEnv pass vector_kwargs={'autoreset_mode': AutoresetMode.NEXT_STEP}."
            )
        self.seed = check_seed(seed, self.name)
        self.config = build_config(self.Config, hyperparams, self.name)
        self.rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.n_actions = int(env.single_action_space.n)  # type: ignore[attr-defined]  # checked Discrete

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Actions for a batch of observations (numpy in, int64 numpy out)."""
        raise NotImplementedError

    def _tensors(self) -> dict[str, Any]:
        return {}

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`_tensors`."""

    def save(self, path: str | Path) -> Path:
        """Write the config (JSON) and weights to ``path``; :meth:`load` reads them back."""
        meta = {
            "agent": self.name,
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "env": env_signature(self.env),
        }
        return save_agent_file(path, meta, self._tensors())

    @classmethod
    def load(cls, path: str | Path, env: VectorEnv, device: str = "auto") -> BaseAgent:
        """Rebuild an agent saved with :meth:`save` for ``env`` (never runs pickled code)."""
        meta, tensors = read_agent_file(path, cls.name, env)
        kwargs = {"device": device} if "device" in _init_parameters(cls) else {}
        agent = cls(env, seed=meta["seed"], **kwargs, **meta["config"])
        agent.num_timesteps = int(meta.get("num_timesteps", 0))
        agent._load_tensors(tensors)
        return agent

    def _check_observations(self, observation: Any) -> np.ndarray:
        array = np.asarray(observation)
        shape = self.env.single_observation_space.shape or ()
        if array.shape[1:] != tuple(shape) and array.shape == tuple(shape):
            array = array[None]
        if array.shape[1:] != tuple(shape):
            raise ValueError(
                f"{self.name}: observations have shape {array.shape}; expected a batch of shape "
                f"(n, {', '.join(map(str, shape))}) for {self.env.single_observation_space}."
            )
        return array


def _init_parameters(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls).parameters)
