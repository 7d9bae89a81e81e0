"""The built-in environment ids and how they are registered with Gymnasium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

NAMESPACE = "nlp_envs"

BUILTIN_ENVS: tuple[dict[str, Any], ...] = (
    {
        "id": "nlp_envs/NextWord-v0",
        "entry_point": "nlp_envs.next_word:NextWordEnv",
        "vector_entry_point": "nlp_envs.next_word:NextWordVectorEnv",
        "max_episode_steps": 20,
        "reward_threshold": -12.0,
        "kwargs": {},
    },
    {
        "id": "nlp_envs/NextWordEasy-v0",
        "entry_point": "nlp_envs.next_word:NextWordEnv",
        "vector_entry_point": "nlp_envs.next_word:NextWordVectorEnv",
        "max_episode_steps": 4,
        "reward_threshold": -9.5,
        "kwargs": {"vocab_size": 12, "context": 2, "prompt_words": 1, "max_words": 4, "min_words": 2},
    },
)


def register_env(**spec: Any) -> None:
    """Register one env with Gymnasium unless that id is already registered (imports are idempotent)."""
    if spec["id"] not in gym.registry:
        gym.register(**spec)


def register_builtin_envs(register: Callable[..., None] = register_env) -> None:
    """Register every built-in env id through ``register`` (the same callback plugins receive)."""
    for spec in BUILTIN_ENVS:
        register(**spec)


def env_ids() -> list[str]:
    """All registered ids in the ``nlp_envs`` namespace, sorted."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith(f"{NAMESPACE}/"))
