"""Reference policies: every env's scale, from ``random`` to ``oracle``.

A policy is called as ``policy(observations, env) -> actions`` on a batch, where ``env`` is the
vector env; each env's vector class lists its policies in ``reference_policies``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from nlp_envs.arguments import check_env_id_type
from nlp_envs.core import Policy, allowed_acts


def random_policy(observations: np.ndarray, env: Any) -> np.ndarray:
    """Uniformly random actions from the env's seeded action space.

    Where the task masks actions, uniform over each slot's allowed acts, as the ``random`` agent
    acts: the floor of the normalised score is then the agent that knows nothing but the masks
    every agent is given (a slot with no allowed act, an ended one, draws from all).
    """
    masks = env.unwrapped.core.action_masks()
    if masks is None:
        return env.action_space.sample()
    return env.action_space.sample(mask=tuple(allowed_acts(masks).astype(np.int8)))


def reference_policies(env_id: str) -> dict[str, Policy]:
    """The reference policies of ``env_id`` by name (at least ``"random"`` and ``"oracle"``)."""
    check_env_id_type(env_id)
    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        raise ValueError(f"{env_id} has no vector_entry_point, so it has no reference policies.")
    creator: Any = (
        load_env_creator(spec.vector_entry_point)
        if isinstance(spec.vector_entry_point, str)
        else spec.vector_entry_point
    )
    return dict(getattr(creator, "reference_policies", {}))


def reference_policy(env_id: str, name: str) -> Policy:
    """The reference policy ``name`` of ``env_id``; an unknown name lists the known ones."""
    policies = reference_policies(env_id)
    if not isinstance(name, str) or name not in policies:
        raise KeyError(f"{env_id} has no reference policy {name!r}; its policies are {sorted(policies)}.")
    return policies[name]
