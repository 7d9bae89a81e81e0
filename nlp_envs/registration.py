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
    {
        "id": "nlp_envs/Recommendation-v0",
        "entry_point": "nlp_envs.recommendation:RecommendationEnv",
        "vector_entry_point": "nlp_envs.recommendation:RecommendationVectorEnv",
        "max_episode_steps": 50,
        "reward_threshold": 15.0,
        "kwargs": {},
    },
    # Classification episodes always terminate by step ceil(max_words / chunk_words) (40; 1 for the
    # bandit); the limit is one more, so that it never cuts an episode (the step that reaches the
    # limit is truncated even when it terminates). Reward thresholds: about the return of the
    # reference classifier on the test split (see classification.py).
    {
        "id": "nlp_envs/TextClassification-v0",
        "entry_point": "nlp_envs.classification:TextClassificationEnv",
        "vector_entry_point": "nlp_envs.classification:TextClassificationVectorEnv",
        "max_episode_steps": 41,
        "reward_threshold": 0.55,
        "kwargs": {},
    },
    {
        "id": "nlp_envs/Sentiment-v0",
        "entry_point": "nlp_envs.classification:TextClassificationEnv",
        "vector_entry_point": "nlp_envs.classification:TextClassificationVectorEnv",
        "max_episode_steps": 41,
        "reward_threshold": 0.35,
        "kwargs": {"dataset": "drugreview"},
    },
    {
        "id": "nlp_envs/TextClassificationBandit-v0",
        "entry_point": "nlp_envs.classification:TextClassificationEnv",
        "vector_entry_point": "nlp_envs.classification:TextClassificationVectorEnv",
        "max_episode_steps": 2,
        "reward_threshold": 0.55,
        "kwargs": {"bandit": True},
    },
    {
        "id": "nlp_envs/SentimentBandit-v0",
        "entry_point": "nlp_envs.classification:TextClassificationEnv",
        "vector_entry_point": "nlp_envs.classification:TextClassificationVectorEnv",
        "max_episode_steps": 2,
        "reward_threshold": 0.45,
        "kwargs": {"dataset": "drugreview", "bandit": True},
    },
    # Dialogue truncates itself after max_turns agent acts (20; 10 for the easy preset), the same
    # step at which Gymnasium's TimeLimit cuts. Reward thresholds: about the rule policy's mean return.
    {
        "id": "nlp_envs/Dialogue-v0",
        "entry_point": "nlp_envs.dialogue:DialogueEnv",
        "vector_entry_point": "nlp_envs.dialogue:DialogueVectorEnv",
        "max_episode_steps": 20,
        "reward_threshold": 12.0,
        "kwargs": {"error_rate": 0.15},
    },
    {
        "id": "nlp_envs/DialogueClean-v0",
        "entry_point": "nlp_envs.dialogue:DialogueEnv",
        "vector_entry_point": "nlp_envs.dialogue:DialogueVectorEnv",
        "max_episode_steps": 20,
        "reward_threshold": 15.0,
        "kwargs": {"error_rate": 0.0},
    },
    {
        "id": "nlp_envs/DialogueNoisy-v0",
        "entry_point": "nlp_envs.dialogue:DialogueEnv",
        "vector_entry_point": "nlp_envs.dialogue:DialogueVectorEnv",
        "max_episode_steps": 20,
        "reward_threshold": 8.5,
        "kwargs": {"error_rate": 0.3},
    },
    {
        "id": "nlp_envs/DialogueEasy-v0",
        "entry_point": "nlp_envs.dialogue:DialogueEnv",
        "vector_entry_point": "nlp_envs.dialogue:DialogueVectorEnv",
        "max_episode_steps": 10,
        "reward_threshold": 16.0,
        "kwargs": {
            "error_rate": 0.0,
            "intents": ("lost_card", "check_balance", "change_address", "close_account"),
            "p_change": 0.0,
            "patience": 6,
            "max_turns": 10,
        },
    },
    # Ranking episodes always terminate after K positions; the limit (K + 1) never cuts one.
    # Reward thresholds: about the pointwise policy's mean return (DCG@K) on the test split; for the
    # easy preset, a normalised score of 0.9 there.
    {
        "id": "nlp_envs/Ranking-v0",
        "entry_point": "nlp_envs.ranking:RankingEnv",
        "vector_entry_point": "nlp_envs.ranking:RankingVectorEnv",
        "max_episode_steps": 11,
        "reward_threshold": 70.0,
        "kwargs": {},
    },
    {
        "id": "nlp_envs/Ranking30-v0",
        "entry_point": "nlp_envs.ranking:RankingEnv",
        "vector_entry_point": "nlp_envs.ranking:RankingVectorEnv",
        "max_episode_steps": 31,
        "reward_threshold": 123.0,
        "kwargs": {"num_candidates": 30},
    },
    {
        "id": "nlp_envs/RankingEasy-v0",
        "entry_point": "nlp_envs.ranking:RankingEnv",
        "vector_entry_point": "nlp_envs.ranking:RankingVectorEnv",
        "max_episode_steps": 5,
        "reward_threshold": 40.0,
        "kwargs": {"num_candidates": 4, "relevance_hint": 0.1},
    },
    # QA episodes always terminate by step candidates + 1 (1 for the bandit); the limit is one more,
    # so that it never cuts an episode. Reward thresholds: about the tfidf policy's mean return; for the
    # easy preset (whose answer hint makes the answer readable), a normalised score of 0.9.
    {
        "id": "nlp_envs/QA-v0",
        "entry_point": "nlp_envs.qa:QAEnv",
        "vector_entry_point": "nlp_envs.qa:QAVectorEnv",
        "max_episode_steps": 12,
        "reward_threshold": 0.3,
        "kwargs": {},
    },
    {
        "id": "nlp_envs/QABandit-v0",
        "entry_point": "nlp_envs.qa:QAEnv",
        "vector_entry_point": "nlp_envs.qa:QAVectorEnv",
        "max_episode_steps": 2,
        "reward_threshold": 0.4,
        "kwargs": {"bandit": True},
    },
    {
        "id": "nlp_envs/QAEasy-v0",
        "entry_point": "nlp_envs.qa:QAEnv",
        "vector_entry_point": "nlp_envs.qa:QAVectorEnv",
        "max_episode_steps": 2,
        "reward_threshold": 0.92,
        "kwargs": {"bandit": True, "candidates": 4, "hard_distractors": 0, "answer_hint": 0.25},
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


def register_plugin_envs() -> list[str]:
    """Register the env ids that installed env plugins (group ``nlp_envs.envs``) add through ``register_envs``.

    A plugin that fails to import, to register, or that reuses a registered id is skipped with a
    ``PluginWarning`` naming it and its distribution; the others still load. ``NLP_ENVS_BLOCK_PLUGINS``
    skips plugins by entry-point name. No agent plugin module is imported (see :mod:`nlp_envs.plugins`).

    Returns:
        The ids registered by this call.
    """
    from nlp_envs.plugins import register_plugin_envs as register_from_plugins

    return register_from_plugins()


def env_ids() -> list[str]:
    """All registered ids in the ``nlp_envs`` namespace, sorted."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith(f"{NAMESPACE}/"))
