"""The one definition of a score: ``evaluate(env_id, policy)`` over held-out, seeded episodes."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from nlp_envs.arguments import check_env_id_type, check_kwarg_names, env_parameters
from nlp_envs.data.files import file_stamp
from nlp_envs.policies import reference_policy


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        env_id: the evaluated env.
        returns: the return of each episode, shape ``(episodes,)``, in episode order.
        normalized_score: ``(mean_return - random) / (oracle - random)`` on the same episodes;
            ``nan`` means *undefined*: the oracle and random references have the same mean return
            on these episodes (or one of the figures is not finite), so the task gives no scale.
        random_return: the ``random`` reference policy's mean return on the same episodes.
        oracle_return: the ``oracle`` reference policy's mean return on the same episodes.
        metrics: the env's task metrics averaged over the episodes.
    """

    env_id: str
    returns: np.ndarray
    normalized_score: float
    random_return: float
    oracle_return: float
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        """The mean of :attr:`returns`."""
        return float(np.mean(self.returns))


def evaluate(
    env_id: str,
    policy: Any,
    *,
    episodes: int = 100,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Evaluation:
    """Run ``episodes`` episodes of ``policy`` and score them.

    Episode ``i`` runs in its own vector slot seeded with ``seed + i``, so the set of episodes is
    the same for every policy, whatever their lengths; each is counted once, from reset to its end.

    Args:
        env_id: a registered env id.
        policy: a reference-policy name (``"random"``, ``"oracle"``, ...), an agent with
            ``predict(observations, deterministic=True)`` (given the env's action masks when it
            takes ``action_masks``: see :func:`agent_policy`), or a callable ``policy(observations, env)``.
        episodes: how many episodes.
        seed: the seed of episode 0 (and of the action space's sampler).
        env_kwargs: keyword arguments of the env (as for ``gym.make``).

    Returns:
        An :class:`Evaluation`.

    Raises:
        ValueError: ``episodes``, ``seed`` or ``env_kwargs`` out of range or of the wrong type; an
            ``env_kwargs`` name the env does not take, or one that ``evaluate`` sets itself
            (``num_envs``, ``vectorization_mode``, ``autoreset_mode``).
    """
    if isinstance(episodes, (bool, np.bool_)) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}.")
    # None (or a bool) would score the policy and the references on different episodes.
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative integer (episode i runs from seed + i, the same for the policy and "
            f"the references), got {seed!r}."
        )
    if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
        raise ValueError(
            f"env_kwargs must be a dict of env keyword arguments or None, got {type(env_kwargs).__name__}."
        )
    kwargs = dict(env_kwargs or {})
    check_env_id_type(env_id)
    check_kwarg_names(env_id, kwargs, env_parameters(env_id), flag="env_kwargs", given=_SET_BY_EVALUATE)
    returns, metrics = _run(env_id, _as_policy(env_id, policy), int(episodes), int(seed), kwargs)
    low, high = (
        float(np.mean(returns)) if policy == name else _reference_mean(env_id, name, int(episodes), int(seed), kwargs)
        for name in ("random", "oracle")
    )
    return Evaluation(env_id, returns, normalized_score(float(np.mean(returns)), low, high), low, high, metrics)


#: The vector env's settings that ``evaluate`` chooses itself, with why (``env_kwargs`` may not hold them).
_SET_BY_EVALUATE = {
    "num_envs": "episode i plays in slot i of one vector env, and episodes=N sets how many",
    "vectorization_mode": "evaluate plays on the native vector env",
    "autoreset_mode": "evaluate counts each episode once, from its reset to its end, in NextStep mode",
}


def normalized_score(mean_return: float, random_return: float, oracle_return: float) -> float:
    """``(mean_return - random_return) / (oracle_return - random_return)``, or ``nan`` where undefined.

    Undefined (``nan``, without a warning) when the two references coincide, and when any figure
    is not finite; never infinite.

    Raises:
        TypeError: a figure that is not a real number (a bool, a string, None), named.
    """
    figures = (mean_return, random_return, oracle_return)
    for name, figure in zip(("mean_return", "random_return", "oracle_return"), figures, strict=True):
        if isinstance(figure, (bool, np.bool_)) or not isinstance(figure, (int, float, np.integer, np.floating)):
            raise TypeError(f"normalized_score: {name} must be a real number, got {figure!r}.")
    if oracle_return == random_return or not all(np.isfinite(figures)):
        return float("nan")
    score = (mean_return - random_return) / (oracle_return - random_return)
    return score if np.isfinite(score) else float("nan")


_REFERENCES: dict[tuple[Any, ...], float] = {}
"""Reference mean returns by (env, policy, episodes, seed, kwargs, stamps of the files they name)."""
_REFERENCES_KEPT = 64


def _reference_mean(env_id: str, name: str, episodes: int, seed: int, kwargs: dict[str, Any]) -> float:
    """The mean return of reference policy ``name``, cached per process.

    The env gets ``kwargs`` as given (a JSON round trip would turn a numpy number into a string), and
    the key holds the stamp of every data file they name, so that an edited file is scored again.
    """
    key = (
        env_id,
        name,
        episodes,
        seed,
        json.dumps(kwargs, sort_keys=True, default=repr),
        tuple(file_stamp(value) for _, value in sorted(kwargs.items())),
    )
    if key not in _REFERENCES:
        returns, _ = _run(env_id, reference_policy(env_id, name), episodes, seed, kwargs)
        if len(_REFERENCES) >= _REFERENCES_KEPT:
            del _REFERENCES[next(iter(_REFERENCES))]  # the oldest
        _REFERENCES[key] = float(np.mean(returns))
    return _REFERENCES[key]


def takes_action_masks(agent: Any) -> bool:
    """Whether the agent's ``predict`` takes ``action_masks`` (and so can obey them)."""
    return "action_masks" in inspect.signature(agent.predict).parameters


def agent_policy(agent: Any) -> Callable[[np.ndarray, Any], np.ndarray]:
    """An agent as ``policy(observations, env)``: its greedy ``predict``, given the env's action masks.

    The masks go to ``predict`` when it takes ``action_masks`` and the env offers ``action_masks()``:
    an agent trained with masks (on Dialogue, say) has never valued the acts they rule out. That
    parameter is the marker of an agent that honours masks. Masks of another shape than
    ``(len(observations), n_actions)`` raise ``ValueError``.
    """
    takes_masks = takes_action_masks(agent)

    def policy(observations: np.ndarray, env: Any) -> np.ndarray:
        masks = getattr(env.unwrapped, "action_masks", None) if takes_masks else None
        if masks is None:
            return agent.predict(observations, deterministic=True)
        allowed = np.asarray(masks())
        expected = (len(observations), int(env.single_action_space.n))
        if allowed.shape != expected or allowed.dtype.kind not in "biu":
            raise ValueError(
                f"the env's action_masks() gave {allowed.dtype} of shape {allowed.shape}; expected booleans of shape "
                f"{expected} (one row per observation, one column per action): fix the env's action_masks."
            )
        return agent.predict(observations, deterministic=True, action_masks=allowed.astype(bool, copy=False))

    return policy


def _as_policy(env_id: str, policy: Any) -> Callable[[np.ndarray, Any], np.ndarray]:
    if isinstance(policy, str):
        return reference_policy(env_id, policy)
    if hasattr(policy, "predict"):
        return agent_policy(policy)
    if callable(policy):
        return policy
    raise TypeError(
        f"policy must be a reference-policy name, an agent with predict() or a callable "
        f"policy(observations, env); got {type(policy).__name__}."
    )


def _run(
    env_id: str, policy: Callable[[np.ndarray, Any], np.ndarray], episodes: int, seed: int, kwargs: dict[str, Any]
) -> tuple[np.ndarray, dict[str, float]]:
    env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="vector_entry_point", **kwargs)
    try:
        env.action_space.seed(seed)
        metric_names = getattr(env.unwrapped, "metric_names", ())
        collected = {name: np.zeros(episodes) for name in metric_names}
        returns = np.zeros(episodes)
        finished = np.zeros(episodes, dtype=bool)
        observations, _ = env.reset(seed=seed)
        while not finished.all():
            actions = np.asarray(policy(observations, env))
            observations, rewards, terminated, truncated, infos = env.step(actions)
            running = ~finished
            returns[running] += rewards[running]
            ended = (terminated | truncated) & running
            if ended.any():
                for name in metric_names:
                    collected[name][ended] = infos[name][ended]
            finished |= ended
    finally:
        env.close()
    return returns, {name: float(values.mean()) for name, values in collected.items()}
