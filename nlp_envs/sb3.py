"""Stable-Baselines3 on the native vector env: :func:`make_vec_env` and the adapter :class:`CoreVecEnv`.

SB3's own ``make_vec_env`` builds a ``DummyVecEnv``: one Python env per copy, stepped in a Python
loop. :func:`make_vec_env` here gives SB3 a real ``stable_baselines3.common.vec_env.VecEnv`` over
the env's one batched core instead, so every SB3 algorithm, wrapper (``VecMonitor``,
``VecNormalize``, ``VecCheckNan``) and callback gets the native speed:

    >>> from stable_baselines3 import PPO
    >>> from nlp_envs.sb3 import make_vec_env
    >>> vec_env = make_vec_env("nlp_envs/NextWordEasy-v0", n_envs=8, seed=0)
    >>> model = PPO("MlpPolicy", vec_env, n_steps=16, batch_size=64, seed=0).learn(256)
    >>> model.num_timesteps
    256

The adapter steps the env in Gymnasium's ``AutoresetMode.SAME_STEP`` (SB3's convention: a slot
whose episode ends restarts in the same step), and speaks SB3's ``VecEnv`` dialect as
``DummyVecEnv`` over ``gym.make`` does, seed for seed (``seed(s)`` seeds slot ``i`` with ``s + i``
at the next reset): the step's observation of an ended slot is the next episode's first one, its
last one is ``infos[i]["terminal_observation"]``, and ``infos[i]["TimeLimit.truncated"]`` is True
where a time limit (not a real end) stopped the episode. Ending slots also get
``infos[i]["episode"] = {"r": return, "l": length}`` (what SB3's logger reads; ``VecMonitor``
writes the same figures) and the task metrics. ``action_masks()`` gives the allowed acts of every
slot, as sb3-contrib's ``MaskablePPO`` reads them. On an env with masks the adapter can also hand
SB3 ``{"observation", "action_mask"}`` dicts (``mask_observations=True``), which the masked SB3
agents of ``nlp_agents.sb3_masking`` read.

This module imports Stable-Baselines3; ``import nlp_envs`` does not import it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from nlp_envs.arguments import check_env_kwargs
from nlp_envs.core import CoreVectorEnv, _check_options_type, _reject_options, allowed_acts, check_seed

OBSERVATION, ACTION_MASK = "observation", "action_mask"
"""The keys of the masked observation dicts (:func:`masked_observation_space`)."""

PER_SLOT_METHODS = ("action_masks", "render")
"""The env methods :meth:`CoreVecEnv.env_method` calls: those whose result has one row per slot."""

_RESERVED = {
    "num_envs": "pass n_envs=",
    "vectorization_mode": "make_vec_env always builds the native vector env",
    "autoreset_mode": "the adapter always steps in AutoresetMode.SAME_STEP, SB3's convention",
}
"""Keyword arguments of ``gym.make_vec`` that :func:`make_vec_env` sets itself, and why."""


class NotNativeEnvError(ValueError):
    """The adapter was given a vector env that is not an nlp-envs native vector env (a ``CoreVectorEnv``)."""


def masked_observation_space(observation_space: spaces.Space, n_actions: int) -> spaces.Dict:
    """The ``Dict`` space SB3 sees on a masked env: the env's observation and the current mask."""
    mask_space = spaces.Box(0.0, 1.0, (n_actions,), dtype=np.float32)
    return spaces.Dict({OBSERVATION: observation_space, ACTION_MASK: mask_space})


def masked_observation(observations: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """A batch of the :func:`masked_observation_space` (a mask row allowing nothing allows everything)."""
    return {OBSERVATION: observations, ACTION_MASK: allowed_acts(masks).astype(np.float32)}


def make_vec_env(env_id: str, n_envs: int = 1, seed: int | None = None, **env_kwargs: Any) -> CoreVecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` copies of ``env_id`` over its native batched core.

    The counterpart of ``stable_baselines3.common.env_util.make_vec_env`` (same first three
    arguments), without a Python env per copy.

    Args:
        env_id: a registered nlp-envs id (``nlp_envs.env_ids()`` lists them).
        n_envs: how many copies (slots), at least 1.
        seed: seeds slot ``i`` with ``seed + i`` at the first reset, as SB3's ``make_vec_env``
            does; None leaves the slots unseeded (SB3's algorithms seed them with their own
            ``seed``).
        **env_kwargs: keyword arguments of the env (as for ``gym.make``), e.g. ``render_mode="ansi"``.

    Returns:
        A :class:`CoreVecEnv` (a ``stable_baselines3.common.vec_env.VecEnv``).

    Raises:
        ValueError: an unregistered id, an id whose vector env is not native, ``n_envs`` or
            ``seed`` out of range, or an env keyword argument the env does not take (the message
            names it).
    """
    where = "nlp_envs.sb3.make_vec_env"
    if not isinstance(env_id, str):
        raise ValueError(
            f"{where}: env_id must be a registered id (a str), got {env_id!r}; nlp_envs.env_ids() lists them."
        )
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"{where}: env_id {env_id!r} is not registered ({error}); nlp_envs.env_ids() lists them."
        ) from None
    if not isinstance(n_envs, (int, np.integer)) or isinstance(n_envs, bool) or n_envs < 1:
        raise ValueError(f"{where}: n_envs must be an integer >= 1 (the number of env copies), got {n_envs!r}.")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"{where}: seed must be None or an integer >= 0 (slot i gets seed + i), got {seed!r}.")
    for name, why in _RESERVED.items():
        if name in env_kwargs:
            raise ValueError(f"{where}: {name!r} is not an env keyword argument here: {why}.")
    check_env_kwargs(env_id, env_kwargs, flag=f"{where}(**env_kwargs)")
    env = gym.make_vec(env_id, num_envs=int(n_envs), vectorization_mode="vector_entry_point", **env_kwargs)
    try:
        vec_env = CoreVecEnv(env, close_env=True)
    except NotNativeEnvError as error:
        env.close()
        raise NotNativeEnvError(f"{where}: {env_id!r}: {error}") from None
    vec_env.core_env.autoreset_mode = AutoresetMode.SAME_STEP  # the adapter's mode; the env says so too
    if seed is not None:
        vec_env.seed(int(seed))
    return vec_env


class CoreVecEnv(VecEnv):
    """An nlp-envs native vector env as an SB3 ``VecEnv`` with same-step autoreset.

    Args:
        env: a vector env made with ``vectorization_mode="vector_entry_point"`` (its ``unwrapped``
            is a :class:`~nlp_envs.core.CoreVectorEnv`), in any autoreset mode: each step runs in
            SAME_STEP and the env gets its own mode back after it.
        mask_observations: observe ``{"observation": obs, "action_mask": float mask}`` dicts (the
            terminal observation's mask is the one of the ended state).
        close_env: whether :meth:`close` closes ``env`` (True where the adapter made it).

    Raises:
        NotNativeEnvError: ``env`` is not an nlp-envs native vector env.
    """

    def __init__(self, env: Any, mask_observations: bool = False, close_env: bool = False) -> None:
        unwrapped = getattr(env, "unwrapped", None)
        core = getattr(unwrapped, "core", None)
        if core is None or not isinstance(unwrapped, CoreVectorEnv):
            raise NotNativeEnvError(
                f"the SB3 adapter needs an nlp-envs native vector env (a CoreVectorEnv), got "
                f"{type(unwrapped if unwrapped is not None else env).__name__}; make it with "
                "gym.make_vec(env_id, num_envs=N, vectorization_mode='vector_entry_point') or with "
                "nlp_envs.sb3.make_vec_env."
            )
        self.core: Any = core
        self.env = env
        self.core_env: CoreVectorEnv = unwrapped
        self.mask_observations = mask_observations
        self.close_env = close_env
        observation_space = env.single_observation_space
        if mask_observations:
            observation_space = masked_observation_space(observation_space, env.single_action_space.n)
        super().__init__(env.num_envs, observation_space, env.single_action_space)
        self.metric_names = tuple(getattr(unwrapped, "metric_names", ()))
        self.episode_returns = np.zeros(self.num_envs)
        self.episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self.actions = np.zeros(self.num_envs, dtype=np.int64)

    def seed(self, seed: int | None = None) -> list[int | None]:
        """SB3's ``seed``: slot ``i`` gets ``seed + i`` at the next reset (None: a random seed).

        Raises:
            nlp_envs.core.InvalidSeedError: ``seed`` is not None or an integer >= 0 (SB3 itself would
                keep ``1.5`` or ``True`` and the reset would take them as 1).
        """
        return list(super().seed(check_seed(self.core_env.env_id, seed)))

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        """SB3's ``set_options``: options that are not dicts are refused now (the next reset refuses any option)."""
        for item in options if isinstance(options, list) else [options]:
            _check_options_type(self.core_env.env_id, item)
        super().set_options(options)

    def reset(self) -> np.ndarray | dict[str, np.ndarray]:
        """Start an episode in every slot (seeded by the last ``seed()``) and return the observations.

        Raises:
            ValueError: ``set_options`` gave options (these envs take none; task settings are env
                keyword arguments).
        """
        for options in self._options:
            _reject_options(self.core_env.env_id, options)
        observations, _ = self.env.reset(seed=list(self._seeds))  # checked there, slot by slot
        self._reset_seeds()
        self.episode_returns[:] = 0.0
        self.episode_lengths[:] = 0
        return self._observe(observations)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions of the next step (validated against the action space)."""
        actions = np.asarray(actions).reshape(-1)
        n = self.action_space.n  # type: ignore[attr-defined]
        wrong = actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu"
        if wrong or actions.min() < 0 or actions.max() >= n:
            raise ValueError(f"expected {self.num_envs} integer actions in [0, {n - 1}], got {actions!r}.")
        self.actions = actions.astype(np.int64)

    def step_wait(self) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every slot in SAME_STEP mode: ended slots restart now, ``terminal_observation`` in their infos."""
        unwrapped = self.core_env
        declared = unwrapped.autoreset_mode
        # For this step only: the caller's env keeps its own mode (SAME_STEP leaves no slot waiting to
        # restart, so the env is consistent in any mode afterwards).
        unwrapped.autoreset_mode = AutoresetMode.SAME_STEP
        try:
            observations, rewards, terminated, truncated, vector_infos = self.env.step(self.actions)
        finally:
            unwrapped.autoreset_mode = declared
        dones = terminated | truncated
        self.episode_returns += rewards
        self.episode_lengths += 1
        # As DummyVecEnv: every slot's info says whether a time limit (not a real end) stopped it.
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": cut} for cut in (truncated & ~terminated).tolist()]
        ending = np.flatnonzero(dones)
        if ending.size:
            final_info = vector_infos["final_info"]
            # The terminal observation's mask is the one of the ended state, which the step's final info holds.
            last = np.stack(vector_infos["final_obs"][ending])
            if "action_mask" in final_info:
                ended_masks = final_info["action_mask"][ending]
            else:  # a task without masks
                ended_masks = np.ones((len(ending), self.action_space.n), dtype=bool)  # type: ignore[attr-defined]
            terminal = self._observe(last, ended_masks)
            # Whole columns are split into Python lists once: indexing arrays slot by slot costs more
            # than the env step itself at a thousand slots.
            if isinstance(terminal, dict):
                rows: list[Any] = [
                    dict(zip(terminal, values, strict=True)) for values in zip(*terminal.values(), strict=True)
                ]
            else:
                rows = list(terminal)
            returns = self.episode_returns[ending].tolist()
            lengths = self.episode_lengths[ending].tolist()
            metrics = {name: list(final_info[name][ending]) for name in self.metric_names}
            for index, slot in enumerate(ending.tolist()):
                info = infos[slot]
                info["terminal_observation"] = rows[index]
                info["episode"] = {"r": returns[index], "l": lengths[index]}
                for name, column in metrics.items():
                    info[name] = column[index]
            self.episode_returns[ending] = 0.0
            self.episode_lengths[ending] = 0
        return self._observe(observations), rewards.astype(np.float32), dones, infos

    def _observe(self, observations: Any, masks: np.ndarray | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """What SB3 sees of a batch of states: the observations, with their masks if asked for.

        ``masks`` defaults to those of the current state (:meth:`action_masks`).
        """
        observations = np.array(observations)
        if not self.mask_observations:
            return observations
        return masked_observation(observations, self.action_masks() if masks is None else masks)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n)`` booleans: the allowed acts of every slot (all True without a mask)."""
        mask = self.core.action_masks()
        n = self.action_space.n  # type: ignore[attr-defined]
        return np.ones((self.num_envs, n), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)

    def _indices(self, indices: Any) -> list[int]:
        """SB3's ``indices`` (None, an int or a sequence) as a list of slots, each checked."""
        if indices is None:
            return list(range(self.num_envs))
        slots = [indices] if isinstance(indices, (int, np.integer)) else list(indices)
        for slot in slots:
            if not isinstance(slot, (int, np.integer)) or isinstance(slot, bool) or not 0 <= slot < self.num_envs:
                raise IndexError(
                    f"CoreVecEnv: index {slot!r} is not a slot; expected integers in [0, {self.num_envs - 1}]."
                )
        return [int(slot) for slot in slots]

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """One result per requested slot of a per-slot method: ``action_masks`` (its row) or ``render`` (its text).

        The slots share one batched env, so only methods whose result has one row per slot can be
        split among them (:data:`PER_SLOT_METHODS`).

        Raises:
            AttributeError: another method (SB3's ``has_attr`` and sb3-contrib read this as "not offered").
        """
        slots = self._indices(indices)
        rows: Any
        if method_name not in PER_SLOT_METHODS:
            raise AttributeError(
                f"CoreVecEnv.env_method: {method_name!r} is not a per-slot method of the batched env; "
                f"supported: {', '.join(PER_SLOT_METHODS)} (call other methods on vec_env.env.unwrapped)."
            )
        if method_name == "action_masks":
            rows = self.action_masks(*method_args, **method_kwargs)
        else:
            rows = self.core_env.render(*method_args, **method_kwargs)
            if rows is None:  # no render_mode: the env warned, as a single env does
                return [None for _ in slots]
        return [rows[slot] for slot in slots]

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """An attribute of the underlying env, once per requested slot (the slots share the env).

        Raises:
            AttributeError: the env has no attribute ``attr_name``.
        """
        value = getattr(self.core_env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the underlying env, for all slots at once (they share it).

        Raises:
            AttributeError: the env has no attribute ``attr_name`` (a new name would be a silent no-op).
            ValueError: ``indices`` names some slots only.
        """
        if sorted(set(self._indices(indices))) != list(range(self.num_envs)):
            raise ValueError(
                f"CoreVecEnv.set_attr({attr_name!r}): the slots share one batched env, so an attribute is set for "
                f"all {self.num_envs} slots at once; pass indices=None."
            )
        if not hasattr(self.core_env, attr_name):
            raise AttributeError(
                f"CoreVecEnv.set_attr: the env ({type(self.core_env).__name__}) has no attribute {attr_name!r}; "
                "set_attr changes attributes the env has."
            )
        setattr(self.core_env, attr_name, value)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """No slot is wrapped (there is no Gymnasium env per slot to wrap)."""
        return [False for _ in self._indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        """Whether the env offers ``attr_name`` (``action_masks`` always)."""
        return attr_name == "action_masks" or hasattr(self.core_env, attr_name)

    def close(self) -> None:
        """Close the vector env if the adapter made it (``close_env``); otherwise its caller owns it."""
        if self.close_env:
            self.env.close()


__all__ = [
    "ACTION_MASK",
    "OBSERVATION",
    "CoreVecEnv",
    "NotNativeEnvError",
    "make_vec_env",
    "masked_observation",
    "masked_observation_space",
]
