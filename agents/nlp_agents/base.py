"""What the built-in agents share: hyper-parameter checking, env checks, masks, the file format.

The agent protocol (DESIGN.md, "Agent plugins"): ``learn(total_timesteps, callback=None)``,
``predict(observation, deterministic=True, action_masks=None)``, ``save(path)`` and a class-level
``load(path, env, device="auto")``. The ``action_masks`` parameter of ``predict`` is the marker that
an agent honours masks: :func:`nlp_envs.evaluation.agent_policy` passes the env's masks only to a
``predict`` that takes it, such a ``predict`` never returns a masked act, and an agent whose
``predict`` lacks it is recorded with the note "agent ignores action masks".

Trust: hyper-parameters are checked for type and range (:func:`hyper` field metadata) and for
the memory they would allocate (:func:`check_memory`) before anything is built; a run whose loss
or weights become non-finite stops with :class:`DivergedError`; nothing non-finite is saved.

The learning loop is here too (:meth:`BaseAgent.learn`): the first call resets the env with the
agent's seed; each vector step acts (:meth:`BaseAgent.behave`, epsilon-greedy by default), steps the
env, does the episode-boundary bookkeeping of NEXT_STEP autoreset once (a :class:`Step`) and hands
the step to the agent's :meth:`BaseAgent.observe`; a later call continues the same episodes. An
agent file therefore holds only its algorithm: its config, its network, its update and the few
methods that wire them to this loop.

An agent file is one ``torch.save`` of ``{"nlp_envs_agent": <JSON text>, "tensors": {name: tensor},
"sha256": <hex>}``: the JSON holds the agent name, its config, the seed and the env it was trained
on; the tensors are its weights; the SHA-256 covers both (files written before it existed have no
``"sha256"`` and are read without that check). It is written atomically (``nlp_envs.atomic``) and
read with ``torch.load(..., weights_only=True)``, which never runs pickled code; a file that is
truncated, altered or does not fit the agent raises :class:`AgentFileError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from nlp_agents.logger import NULL_LOGGER, EpisodeLog, Logger
from nlp_envs import atomic
from nlp_envs.arguments import kwarg_text

FORMAT = "nlp-envs-agent/1"

Callback = Callable[[Any, int], Any]
"""``callback(agent, timesteps_done)``, called during ``learn``; returning ``False`` stops training."""


class HyperparameterError(ValueError):
    """An unknown or ill-typed hyper-parameter."""


class UnsupportedEnvError(ValueError):
    """The agent cannot work with this env's spaces."""


class AgentFileError(ValueError):
    """A saved agent file that cannot be loaded here (not ours, altered, another agent or another env)."""


class DivergedError(RuntimeError):
    """Training made the loss or the weights non-finite; the message starts with ``"diverged:"``."""


MAX_SIZE = 2**31 - 1
"""Upper bound of every size hyper-parameter (tensor indices); :func:`check_memory` bounds them further."""

MAX_COUNT = 2**62
"""Upper bound of counts of steps (they only have to fit an int64)."""


def cpu_count() -> int:
    """The number of CPUs of this machine (1 where the platform does not tell)."""
    return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Range:
    """The accepted values of a numeric hyper-parameter (of each item, for a tuple).

    Attributes:
        low: the smallest accepted value (None: no bound).
        high: the largest accepted value, or a function that gives it (e.g. the CPU count).
        low_open: ``low`` itself is refused (``> low`` rather than ``>= low``).
    """

    low: float | None = None
    high: float | Callable[[], float] | None = None
    low_open: bool = False

    def upper(self) -> float | None:
        """``high``, called if it is a function."""
        return self.high() if callable(self.high) else self.high

    def describe(self) -> str:
        """The range as text, e.g. ``"> 0"``, ``"in [0, 1]"`` or ``">= 1 and <= 2147483647"``."""
        high = self.upper()
        if self.low is not None and high is not None and high not in (MAX_SIZE, MAX_COUNT):
            return f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(high)}]"
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {_number(self.low)}"
        parts = [part for part in (low, None if high is None else f"<= {_number(high)}") if part]
        return " and ".join(parts) or "any finite number"

    def check(self, name: str, value: Any, agent: str) -> None:
        """Raise :class:`HyperparameterError` unless ``value`` (or each of its items) is in the range."""
        high = self.upper()
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if not isinstance(item, (int, float, np.integer, np.floating)) or isinstance(item, bool):
                continue  # a type the coercion accepted that has no order (e.g. None for "no limit")
            too_low = self.low is not None and (item <= self.low if self.low_open else item < self.low)
            if too_low or (high is not None and item > high):
                shown = f"{value!r}" if item is value else f"{value!r} (item {item!r})"
                raise HyperparameterError(f"{agent}: hyper-parameter {name} must be {self.describe()}, got {shown}.")


def _number(value: float) -> str:
    """An integral value without a decimal point, others in ``g`` format."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else f"{value:g}"


def hyper(
    default: Any, low: float | None = None, high: float | Callable[[], float] | None = None, *, low_open: bool = False
) -> Any:
    """A config dataclass field with the :class:`Range` that :func:`build_config` checks.

    Args:
        default: the field's default.
        low: the smallest accepted value.
        high: the largest accepted value (a number or a function such as :func:`cpu_count`).
        low_open: refuse ``low`` itself.
    """
    return dataclasses.field(default=default, metadata={"range": Range(low, high, low_open)})


def unit(default: float) -> Any:
    """A field in ``[0, 1]`` (probabilities, discounts, lambdas, fractions)."""
    return hyper(default, 0.0, 1.0)


def positive(default: float) -> Any:
    """A float field ``> 0`` (learning rates)."""
    return hyper(default, 0.0, low_open=True)


def size(default: Any, low: int = 1) -> Any:
    """An int field (or tuple of ints) in ``[low, MAX_SIZE]`` (buffers, batches, widths, steps)."""
    return hyper(default, low, MAX_SIZE)


def count(default: int, low: int = 0) -> Any:
    """An int field in ``[low, MAX_COUNT]`` (numbers of steps)."""
    return hyper(default, low, MAX_COUNT)


def threads(default: int) -> Any:
    """A thread count in ``[0, cpu_count()]`` (0 keeps torch's setting): more threads than CPUs only thrash."""
    return hyper(default, 0, cpu_count)


def field_range(config_cls: type, name: str) -> Range | None:
    """The :class:`Range` of field ``name`` of a config dataclass, if it has one."""
    for item in dataclasses.fields(config_cls):
        if item.name == name:
            return item.metadata.get("range")
    return None


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
            if not math.isfinite(float(value)):
                raise HyperparameterError(
                    f"{agent}: hyper-parameter {name}={value!r} is not a finite number; give a finite value."
                )
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
        config_cls: a dataclass; its fields are the accepted hyper-parameters, each field's
            :class:`Range` (made with :func:`hyper`) bounds its values, and an optional
            ``validate(self)`` method checks what involves several fields and raises ``ValueError``.
        hyperparams: the user's keyword arguments.
        agent: the agent name, for messages.

    Returns:
        The config instance.

    Raises:
        HyperparameterError: an unknown name, a value of the wrong type (floats must be finite) or
            out of range; the message names the hyper-parameter and what is accepted.
    """
    hints = typing.get_type_hints(config_cls)
    names = {item.name for item in dataclasses.fields(config_cls)}
    unknown = sorted(set(hyperparams) - names)
    if unknown:
        raise HyperparameterError(
            f"{agent}: unknown hyper-parameter(s) {', '.join(unknown)}. Accepted: {describe_fields(config_cls)}."
        )
    values = {name: _coerce(name, value, hints[name], agent) for name, value in hyperparams.items()}
    for name, value in values.items():
        bounds = field_range(config_cls, name)
        if bounds is not None:
            bounds.check(name, value, agent)
    config = config_cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as error:
            raise HyperparameterError(f"{agent}: {error}") from None
    return config


FALLBACK_MEMORY = 4 * 2**30
"""Bytes assumed available where the platform does not tell (neither /proc/meminfo nor sysconf)."""


def available_memory(device: Any = None) -> tuple[int, str]:
    """Bytes that can be allocated now and where that figure comes from.

    On a CUDA device, the device's free memory; otherwise ``MemAvailable`` of ``/proc/meminfo``,
    else the available pages from ``os.sysconf``, else :data:`FALLBACK_MEMORY`.
    """
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available pages from os.sysconf"
    except (AttributeError, OSError, ValueError):
        return FALLBACK_MEMORY, "assumed: this platform does not report available memory"


def format_bytes(amount: float) -> str:
    """``amount`` bytes as text with a binary unit, e.g. ``"1.5 GiB"``."""
    for unit_name in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if amount < 1024 or unit_name == "PiB":
            return f"{amount:.0f} {unit_name}" if unit_name == "B" else f"{amount:.1f} {unit_name}"
        amount /= 1024
    raise AssertionError("unreachable")


def check_memory(agent: str, needs: Mapping[str, float], device: Any = None) -> None:
    """Refuse a configuration whose allocations cannot fit in the memory available now.

    Args:
        agent: the agent name, for the message.
        needs: estimated bytes by what they are for, e.g. ``{"replay buffer (buffer_size)": 3e9}``
            (name the hyper-parameters that set each figure).
        device: where they are allocated (a ``torch.device``; None or CPU: main memory).

    Raises:
        HyperparameterError: the total exceeds :func:`available_memory`; the message gives the
            total, its largest parts and the limit.
    """
    total = float(sum(needs.values()))
    available, source = available_memory(device)
    if total > available:
        parts = sorted(needs.items(), key=lambda item: -item[1])
        listing = ", ".join(f"{what} {format_bytes(amount)}" for what, amount in parts[:3])
        raise HyperparameterError(
            f"{agent}: this configuration needs about {format_bytes(total)} ({listing}) but only "
            f"{format_bytes(available)} is available ({source}); lower those sizes."
        )


def check_action_masks(masks: Any, count: int, n_actions: int, agent: str) -> np.ndarray | None:
    """``masks`` as a ``(count, n_actions)`` boolean array (None stays None), else a named ``ValueError``."""
    if masks is None:
        return None
    array = np.asarray(masks)
    if array.shape != (count, n_actions) or array.dtype.kind not in "biu":
        raise ValueError(
            f"{agent}: action_masks has shape {array.shape} and dtype {array.dtype}; expected booleans of shape "
            f"({count}, {n_actions}), one row per observation and one column per action."
        )
    return array.astype(bool, copy=False)


def first_nonfinite(named: Mapping[str, Any]) -> str | None:
    """The name of the first floating tensor with a NaN or an infinity, or None (one host sync in all)."""
    import torch

    floating = [(name, tensor) for name, tensor in named.items() if torch.is_floating_point(tensor)]
    if not floating:
        return None
    flags = torch.stack([torch.isfinite(tensor).all() for _, tensor in floating])
    if bool(flags.all()):
        return None
    return floating[int((~flags).nonzero()[0, 0])][0]


def diverged(agent: str, steps: int, what: str) -> DivergedError:
    """The :class:`DivergedError` of ``agent`` at env step ``steps`` where ``what`` became non-finite."""
    return DivergedError(
        f"diverged: {agent} at step {steps}: {what} became non-finite (NaN or inf); the run is not a result. "
        "Lower learning_rate (or clip gradients with max_grad_norm) and train again."
    )


def check_writable(path: str | Path) -> Path:
    """Check before a long run that an agent file can be written at ``path``; return it as a Path.

    The file itself is not created (saving creates missing folders below the nearest existing one).

    Raises:
        AgentFileError: ``path`` is a folder, sits below a file, or its folder is not writable.
    """
    try:
        return atomic.check_writable(path)
    except atomic.NotWritableError as error:
        raise AgentFileError(f"cannot save an agent to {error}") from None


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


MAX_AGENT_SEED = 2**64 - 1
"""The largest agent seed: torch's generators take 64-bit seeds (a larger one failed in torch, unnamed)."""


def check_seed(seed: Any, agent: str) -> int:
    """Return ``seed`` as an int in ``0 .. MAX_AGENT_SEED``, else raise."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise HyperparameterError(f"{agent}: seed must be a non-negative integer, got {seed!r}.")
    if seed > MAX_AGENT_SEED:
        raise HyperparameterError(f"{agent}: seed must be at most {MAX_AGENT_SEED} (2**64 - 1), got {seed!r}.")
    return int(seed)


MAX_LEARN_STEPS = 10_000_000_000
"""The most steps one ``learn`` call takes: a leaderboard suite's bound on a cell's steps (an extra zero
typed by mistake would otherwise run for days without a word)."""


def check_timesteps(total_timesteps: Any, agent: str) -> int:
    """``total_timesteps`` of ``learn`` as an int in ``0 .. MAX_LEARN_STEPS``, else a ValueError naming it.

    A whole float (``1e5``, as SB3's ``learn`` takes) counts as its integer; a bool, a fraction, a string
    or a negative number is refused, where ``int()`` would have truncated or converted it silently.
    """
    whole_float = isinstance(total_timesteps, (float, np.floating)) and float(total_timesteps).is_integer()
    integer = isinstance(total_timesteps, (int, np.integer)) and not isinstance(total_timesteps, (bool, np.bool_))
    if not (integer or whole_float) or not 0 <= total_timesteps <= MAX_LEARN_STEPS:
        raise ValueError(
            f"{agent}: learn(total_timesteps) must be a whole number from 0 to {MAX_LEARN_STEPS:,}, "
            f"got {total_timesteps!r}."
        )
    return int(total_timesteps)


def resolve_device(device: Any, agent: str) -> Any:
    """The ``torch.device`` that ``device`` names; the one device resolution of agents and the leaderboard.

    ``"auto"`` is CUDA when available, else CPU; anything else torch accepts is checked (a CUDA
    device needs CUDA here). The leaderboard records ``str()`` of the result.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (or a ``torch.device``).
        agent: who asks, for the message (an agent name, or a flag such as ``"--device"``).

    Raises:
        HyperparameterError: not a device, or CUDA asked for where there is none.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:  # ValueError: an int too large
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


def epsilon_greedy(
    rng: np.random.Generator,
    epsilon: float,
    greedy: Callable[[], np.ndarray],
    n_actions: int,
    count: int,
    masks: np.ndarray | None,
) -> np.ndarray:
    """Each row's greedy action, or with probability ``epsilon`` a uniform allowed one.

    The draws are the same whatever the greedy actions are: ``count`` uniforms decide which rows
    explore, then one random action per row (so a seeded agent's stream of random numbers does
    not depend on its weights). ``greedy()`` is called only when some row acts greedily.

    Args:
        rng: the agent's generator.
        epsilon: the probability of exploring, per row.
        greedy: returns the ``(count,)`` greedy actions.
        n_actions: the number of actions.
        count: the number of rows.
        masks: ``(count, n_actions)`` allowed acts, or None (all allowed).
    """
    explore = rng.random(count) < epsilon
    actions = random_actions(rng, n_actions, count, masks)
    if explore.all():
        return actions
    return np.where(explore, actions, greedy())


RUN_ENV_KWARGS = frozenset(
    {"num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "render_mode", "info_text", "autoreset_mode"}
    | {"max_episode_steps"}
)
"""Env kwargs that change how an env runs (slots, vectorisation, rendering, infos, autoreset, step limit),
not what its observations and acts mean: a saved agent does not record them."""

EPISODE_ENV_KWARGS = frozenset({"split"})
"""Env kwargs that pick which episodes are played, not what observations and acts mean (every task builds
its vocabulary and features from the training split): a saved agent loads onto another value of these."""


def constructor_defaults(env_id: str) -> dict[str, Any]:
    """The default value of each keyword argument of ``env_id``'s constructor (none where unknown)."""
    from nlp_envs.arguments import env_parameters  # here: import nlp_envs loads the plugins

    try:
        parameters = env_parameters(env_id) or {}
    except gym.error.Error:
        return {}
    return {name: item.default for name, item in parameters.items() if item.default is not item.empty}


def task_kwargs(env: Any) -> dict[str, str] | None:
    """The kwargs that define ``env``'s task, each as :func:`kwarg_text`; None where they cannot be known.

    The constructor's defaults, overridden by the registered preset and then by the env's own kwargs,
    less :data:`RUN_ENV_KWARGS`. An env made without Gymnasium's registry has no ``spec``: None.
    """
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    if spec is None:
        return None
    resolved = constructor_defaults(spec.id) | dict(spec.kwargs)
    return {key: kwarg_text(value) for key, value in sorted(resolved.items()) if key not in RUN_ENV_KWARGS}


def env_signature(env: VectorEnv) -> dict[str, Any]:
    """What a saved agent must match: the env id, both single spaces (as text) and the task's kwargs.

    The kwargs (:func:`task_kwargs`) are left out for an env without a ``spec``.
    """
    signature: dict[str, Any] = {
        "env_id": env_name(env),
        "observation_space": str(env.single_observation_space),
        "action_space": str(env.single_action_space),
    }
    kwargs = task_kwargs(env)
    if kwargs is not None:
        signature["env_kwargs"] = kwargs
    return signature


def _digest(header: str, tensors: Mapping[str, Any]) -> str:
    """SHA-256 of the header text and every tensor's name, dtype, shape and bytes (CPU tensors)."""
    import torch

    digest = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().data)
    return digest.hexdigest()


def save_agent_file(path: str | Path, meta: dict[str, Any], tensors: Mapping[str, Any]) -> Path:
    """Write ``meta`` (JSON-able) and ``tensors`` (torch tensors or numpy arrays) to ``path`` atomically.

    Raises:
        DivergedError: a tensor holds NaN or inf (nothing is written).
        OSError: the file could not be written (a full disk, say); a previous file at ``path`` is
            then unchanged and no temporary file is left.
    """
    import torch

    from nlp_envs.atomic import atomic_write  # here: import nlp_envs loads the plugins

    path = Path(path)
    cpu = {
        name: (torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value)
        .detach()
        .cpu()
        .clone()
        for name, value in tensors.items()
    }
    bad = first_nonfinite(cpu)
    if bad is not None:
        raise DivergedError(
            f"diverged: {meta.get('agent')} has non-finite weights ({bad} holds NaN or inf); refusing to save "
            f"{str(path)!r} (nothing was written). Train again with a lower learning_rate."
        )
    header = json.dumps({"format": FORMAT, **meta}, sort_keys=True)
    payload = {"nlp_envs_agent": header, "tensors": cpu, "sha256": _digest(header, cpu)}
    try:
        return atomic_write(path, lambda handle: torch.save(payload, handle))
    except OSError as error:
        raise OSError(
            error.errno, f"could not save the agent ({error.strerror}); any previous file is unchanged", str(path)
        ) from error


_META_TYPES: dict[str, type] = {
    "format": str,
    "agent": str,
    "config": dict,
    "seed": int,
    "num_timesteps": int,
    "env": dict,
}


def read_agent_meta(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an agent file safely (``weights_only=True``); return ``(meta, tensors)``.

    Raises:
        AgentFileError: no file, not an agent file, truncated or altered (checksum, header keys
            and types, tensors), or a format this version does not read.
    """
    import torch

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise AgentFileError(f"no agent file at {where!r}; save one with agent.save(path).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged zip or pickle fails in many ways (IndexError, UnicodeDecodeError...)
        detail = (str(error).splitlines() or [type(error).__name__])[0]
        raise AgentFileError(
            f"{where!r} is not an nlp-envs agent file, or is truncated or damaged (it could not be read as "
            f"weights only: {detail}). Files written by agent.save(path) can be loaded."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("nlp_envs_agent"), str):
        raise AgentFileError(f"{where!r} is not an nlp-envs agent file (no 'nlp_envs_agent' header).")
    extra = set(payload) - {"nlp_envs_agent", "tensors", "sha256"}
    tensors = payload.get("tensors")
    if extra or not isinstance(tensors, dict):
        raise AgentFileError(
            f"{where!r} is damaged: expected the keys nlp_envs_agent, tensors and sha256, "
            f"found {sorted(map(str, payload))}."
        )
    if any(not isinstance(name, str) or not isinstance(value, torch.Tensor) for name, value in tensors.items()):
        raise AgentFileError(f"{where!r} is damaged: 'tensors' must map names to tensors.")
    if "sha256" in payload and payload["sha256"] != _digest(payload["nlp_envs_agent"], tensors):
        raise AgentFileError(
            f"{where!r} is damaged: its content does not match its SHA-256 checksum (altered or corrupted on disk)."
        )
    try:
        meta = json.loads(payload["nlp_envs_agent"])
    except ValueError as error:
        raise AgentFileError(f"{where!r} is damaged: its header is not JSON ({error}).") from None
    if not isinstance(meta, dict):
        raise AgentFileError(f"{where!r} is damaged: its header is not a JSON object.")
    if meta.get("format") != FORMAT:
        raise AgentFileError(f"{where!r} has format {meta.get('format')!r}; this version reads {FORMAT!r}.")
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if key == "num_timesteps" and value is None:
            continue  # optional: files may leave it out
        if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and value < 0):
            raise AgentFileError(
                f"{where!r} is damaged: header key {key!r} is {value!r}; expected a "
                f"{'non-negative integer' if kind is int else kind.__name__}."
            )
    if any(not isinstance(meta["env"].get(key), str) for key in ("env_id", "observation_space", "action_space")):
        raise AgentFileError(
            f"{where!r} is damaged: header key 'env' needs env_id, observation_space and action_space as text."
        )
    kwargs = meta["env"].get("env_kwargs", {})
    if not isinstance(kwargs, dict) or any(not isinstance(value, str) for value in kwargs.values()):
        raise AgentFileError(f"{where!r} is damaged: header key 'env' has env_kwargs that are not a map of texts.")
    return meta, tensors


def read_agent_file(path: str | Path, agent: str, env: VectorEnv) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an agent file written by agent ``agent`` for an env like ``env``; else raise :class:`AgentFileError`."""
    meta, tensors = read_agent_meta(path)
    if meta.get("agent") != agent:
        raise AgentFileError(
            f"{str(path)!r} holds a {meta.get('agent')!r} agent, not {agent!r}; load it with "
            f"nlp_agents.load(path, env), which picks the right agent."
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
    saved_kwargs, kwargs = saved.get("env_kwargs"), expected.get("env_kwargs")
    if saved_kwargs is not None and kwargs is not None:
        # Only kwargs both sides know: a file from a version whose task had fewer kwargs still loads.
        for key in sorted(saved_kwargs.keys() & kwargs.keys() - EPISODE_ENV_KWARGS):
            if saved_kwargs[key] != kwargs[key]:
                raise AgentFileError(
                    f"{str(path)!r} was trained on {saved['env_id']} with env kwarg {key}={saved_kwargs[key]}, but "
                    f"this env has {key}={kwargs[key]}: its observations or acts may mean other things there; "
                    f"make the env with {key}={saved_kwargs[key]} (of the env kwargs only "
                    f"{', '.join(sorted(EPISODE_ENV_KWARGS))} may differ)."
                )
    return meta, tensors


def build_from_file(path: str | Path, meta: Mapping[str, Any], build: Callable[..., Any]) -> Any:
    """``build(**meta["config"])``, an :class:`AgentFileError` if the saved config is refused here."""
    try:
        return build(**meta["config"])
    except (HyperparameterError, UnsupportedEnvError, TypeError) as error:
        raise AgentFileError(
            f"{str(path)!r}: its saved config does not build a {meta['agent']} agent here: {error}"
        ) from None


def check_saved_tensors(
    path: str | Path, expected: Mapping[str, Any], saved: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """The saved tensors under ``prefix`` (prefix removed) if they match ``expected`` in names, shapes, dtypes.

    Raises:
        AgentFileError: a tensor is missing, unexpected, of another shape or dtype, or not finite.
    """
    import torch

    found = {name[len(prefix) :]: value for name, value in saved.items() if name.startswith(prefix)}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(prefix + name for name in set(found) - set(expected))
    unexpected += sorted(name for name in saved if not name.startswith(prefix))
    if missing or unexpected:
        raise AgentFileError(
            f"{str(path)!r} does not fit this agent: missing tensors {[prefix + n for n in missing]}, "
            f"unexpected {unexpected}."
        )
    for name, want in expected.items():
        have = found[name]
        if not isinstance(have, torch.Tensor) or have.shape != want.shape or have.dtype != want.dtype:
            raise AgentFileError(
                f"{str(path)!r} does not fit this agent: tensor {prefix + name} is "
                f"{getattr(have, 'dtype', type(have).__name__)} {tuple(getattr(have, 'shape', ()))}; expected "
                f"{want.dtype} {tuple(want.shape)}."
            )
    bad = first_nonfinite(found)
    if bad is not None:
        raise AgentFileError(f"{str(path)!r} is damaged: tensor {prefix + bad} holds NaN or inf.")
    return found


@dataclasses.dataclass(frozen=True)
class Step:
    """One vector step of the learning loop, with the NEXT_STEP autoreset bookkeeping done.

    Under NEXT_STEP autoreset the step after an episode's end restarts that slot and ignores its
    action: that slot's row is no transition (``valid`` is False there). Arrays have shape
    ``(num_envs, ...)``.

    Attributes:
        observations: the observations the actions were chosen from.
        masks: their allowed acts (None: every act allowed).
        actions: the actions taken.
        rewards: the rewards received.
        next_observations: the observations after the step (a new episode's first where a slot reset).
        next_masks: their allowed acts.
        ended: the episode ended at this step (terminated or truncated).
        stops: the return stops here, no bootstrapping: terminated, and truncated too unless the
            config's ``bootstrap_truncated`` is True.
        valid: a real transition, not the NEXT_STEP reset step of a slot whose episode had ended.
    """

    observations: np.ndarray
    masks: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    next_masks: np.ndarray | None
    ended: np.ndarray
    stops: np.ndarray
    valid: np.ndarray


_Agent = typing.TypeVar("_Agent", bound="BaseAgent")


class BaseAgent:
    """The shared shell of a built-in agent: checks inputs, keeps the RNG, runs the loop, saves and loads.

    A subclass sets ``name`` and ``Config`` (a dataclass of :func:`hyper` fields) and implements
    :meth:`greedy` (the acts :meth:`predict` returns) and :meth:`observe` (learning from one
    :class:`Step`); :meth:`begin` and :meth:`end` open and close each ``learn`` call, :meth:`threads`
    wraps learning and predicting, and ``_tensors`` / ``_load_tensors`` give the saved state. The
    default :meth:`behave` is epsilon-greedy on the config's ``epsilon_start``, ``epsilon_end`` and
    ``exploration_fraction``; ``predict(deterministic=False)`` explores with ``epsilon_end``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    next_step_autoreset: ClassVar[bool] = True
    """Whether the agent's learning loop relies on NEXT_STEP autoreset (every nlp-envs env has it)."""
    offline: ClassVar[bool] = False
    """Whether the agent learns from a logged dataset rather than its env (see :mod:`nlp_agents.offline`)."""

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
        self._observations: np.ndarray | None = None  # where the env's slots are; None until the first learn
        self._masks: np.ndarray | None = None
        self._ended = np.zeros(env.num_envs, dtype=bool)
        self.logger: Logger = NULL_LOGGER
        self._episode_log: EpisodeLog | None = None
        self.log_due = False
        """True during the :meth:`observe` of a step after which the logger writes (compute costly scalars then)."""

    def set_logger(self, logger: Logger) -> None:
        """Write scalars to ``logger`` (see :mod:`nlp_agents.logger`) every ``logger.interval`` env steps of ``learn``.

        Raises:
            TypeError: ``logger`` is not a :class:`~nlp_agents.logger.Logger`.
        """
        if not isinstance(logger, Logger):
            raise TypeError(f"{self.name}: set_logger takes an nlp_agents.logger.Logger, got {type(logger).__name__}.")
        self.logger = logger
        metrics = tuple(getattr(self.env.unwrapped, "metric_names", ()))
        self._episode_log = EpisodeLog(logger, self.env.num_envs, metrics) if logger.writes else None

    def training_scalars(self, done: int, total: int) -> dict[str, float]:
        """The learner's scalars for the logger (``train/...``), asked for at each write of ``learn``.

        By default the learning rate and epsilon, where the config has them; agents add their loss
        and mean Q or V values.

        Args:
            done: env steps done in this ``learn`` call.
            total: env steps this call takes.
        """
        config, scalars = self.config, {}
        if getattr(config, "learning_rate", None) is not None:
            scalars["train/learning_rate"] = float(config.learning_rate)
        if getattr(config, "epsilon_start", None) is not None:
            scalars["train/epsilon"] = self.epsilon(done, total)
        return scalars

    def learn(self: _Agent, total_timesteps: int, callback: Callback | None = None) -> _Agent:
        """Train for ``total_timesteps`` env steps (all slots together); a later call continues the episodes.

        Args:
            total_timesteps: env steps to take, counted over all slots.
            callback: ``callback(agent, timesteps_done)`` after each vector step; ``False`` stops.

        Returns:
            The agent.

        With a logger (:meth:`set_logger`), every ``logger.interval`` env steps and at the end of the
        call it writes the episodes that ended meanwhile, the steps per second and
        :meth:`training_scalars` (see :mod:`nlp_agents.logger` for the tags).
        """
        env = self.env
        with self.threads():
            if self._observations is None:
                self._observations, infos = env.reset(seed=self.seed)
                self._masks = action_masks(env, infos)
            start, total = self.num_timesteps, check_timesteps(total_timesteps, self.name)
            log = self._episode_log
            if log is not None:
                log.start(start)
                callback = None if callback is None else log.timed(callback)
            self.begin()
            while self.num_timesteps < start + total:
                observations, masks = self._observations, self._masks
                actions = self.behave(observations, masks, self.num_timesteps - start, total)
                next_observations, rewards, terminated, truncated, infos = env.step(actions)
                ended = terminated | truncated
                bootstrap = getattr(self.config, "bootstrap_truncated", False)
                step = Step(
                    observations,
                    masks,
                    actions,
                    rewards,
                    next_observations,
                    action_masks(env, infos),
                    ended,
                    terminated if bootstrap else ended,
                    ~self._ended,
                )
                self._observations, self._masks, self._ended = next_observations, step.next_masks, ended
                self.num_timesteps += env.num_envs
                if log is not None:
                    log.step(rewards, ended, step.valid, infos)
                    self.log_due = log.due(self.num_timesteps) or self.num_timesteps >= start + total
                self.observe(step)
                if self.log_due:
                    assert log is not None
                    log.write(self.num_timesteps, self.training_scalars(self.num_timesteps - start, total))
                    self.log_due = False
                if callback is not None and callback(self, self.num_timesteps) is False:
                    break
            self.end()
            if log is not None:
                log.finish(self.num_timesteps, lambda: self.training_scalars(self.num_timesteps - start, total))
        return self

    def threads(self) -> contextlib.AbstractContextManager[Any]:
        """The context that ``learn`` and ``predict`` run in (agents on torch set its CPU threads)."""
        return contextlib.nullcontext()

    def begin(self) -> None:
        """Called at the start of each ``learn`` call, after the first call's reset."""

    def end(self) -> None:
        """Called at the end of each ``learn`` call (also after a callback stopped it)."""

    def behave(self, observations: np.ndarray, masks: np.ndarray | None, done: int, total: int) -> np.ndarray:
        """The acts of the learning loop: epsilon-greedy, epsilon decaying linearly over the call.

        Args:
            observations: the slots' observations.
            masks: their allowed acts, or None.
            done: env steps done in this ``learn`` call.
            total: env steps this call takes.
        """
        return epsilon_greedy(
            self.rng,
            self.epsilon(done, total),
            lambda: self.greedy(observations, masks),
            self.n_actions,
            len(observations),
            masks,
        )

    def epsilon(self, done: int, total: int) -> float:
        """The exploration rate after ``done`` of the ``total`` env steps of a ``learn`` call.

        It decays linearly from the config's ``epsilon_start`` to ``epsilon_end`` over the first
        ``exploration_fraction`` of the call.
        """
        config = self.config
        return linear_epsilon(done, total, config.epsilon_start, config.epsilon_end, config.exploration_fraction)

    def observe(self, step: Step) -> None:
        """Learn from one vector step (``num_timesteps`` already counts it)."""

    def greedy(self, observations: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """The agent's best acts for a batch of checked observations, among the allowed ones."""
        raise NotImplementedError

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, action_masks: np.ndarray | None = None
    ) -> np.ndarray:
        """Actions for a batch of observations (numpy in, int64 numpy out), honouring ``action_masks``.

        Greedy actions; ``epsilon_end``-greedy when ``deterministic`` is False.
        """
        observations = self._check_observations(observation)
        masks = self._check_masks(action_masks, len(observations))
        with self.threads():
            actions = self.greedy(observations, masks)
        if deterministic:
            return actions
        return epsilon_greedy(
            self.rng, self.config.epsilon_end, lambda: actions, self.n_actions, len(observations), masks
        )

    def _tensors(self) -> dict[str, Any]:
        return {}

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`_tensors` (already checked against it by :meth:`load`)."""

    def _check_masks(self, masks: Any, count: int) -> np.ndarray | None:
        return check_action_masks(masks, count, self.n_actions, self.name)

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
        agent = build_from_file(path, meta, lambda **config: cls(env, seed=meta["seed"], **kwargs, **config))
        agent.num_timesteps = int(meta.get("num_timesteps", 0))
        current = {name: torch_tensor(value) for name, value in agent._tensors().items()}
        agent._load_tensors(check_saved_tensors(path, current, tensors))
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


def torch_tensor(value: Any) -> Any:
    """A numpy array as a torch tensor (sharing memory); a tensor as it is."""
    import torch

    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def _init_parameters(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls).parameters)
