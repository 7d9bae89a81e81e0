"""Seeded trajectories pinned by digest: a refactor of a task must leave every number and text unchanged.

The digests were recorded before the dialogue and classification tasks were split into parts.
Each covers 50 steps of seeded random actions on the native vector env (16 slots, texts in the
infos) and on the single env (text every step), hashing observations, rewards, terminations,
truncations and infos. Only trajectories made of exact arithmetic are pinned (the dialogue; the
classification task with token observations), so that the digests do not depend on the BLAS or
libm of the machine; the embedding observations and Recommendation go through fitted tables.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs  # noqa: F401  (registers the ids)

STEPS = 50
# (env id, keyword arguments): (vector env digest, single env digest), recorded on the code before the split.
# The two reading-task rows were recorded again when the autoreset change put `action_mask` into the
# infos of every masked task: with that key left out, the new code gives the old digests exactly.
PINNED = {
    ("nlp_envs/Dialogue-v0", ()): ("1373cc758d5a035a", "2b2544752063a289"),
    ("nlp_envs/DialogueClean-v0", ()): ("c55dfe625ad3c97f", "24ad1bd26085b40d"),
    ("nlp_envs/DialogueNoisy-v0", (("p_change", 0.7),)): ("2d4826fb328137a3", "3840b9e395ab7941"),
    ("nlp_envs/DialogueEasy-v0", ()): ("5809b3a28bdd6210", "b43b9bd880636306"),
    ("nlp_envs/TextClassification-v0", (("observation", "tokens"),)): ("bda6c3e99bb2ac06", "01a524dd01ef145b"),
    ("nlp_envs/Sentiment-v0", (("observation", "tokens"),)): ("4daac7a57aee62fb", "ba3121a2eab5ee2d"),
    ("nlp_envs/TextClassificationBandit-v0", (("observation", "tokens"),)): ("d684996a9bedb959", "ba21b4e08bf85d3e"),
    ("nlp_envs/SentimentBandit-v0", (("observation", "tokens"),)): ("d1d2c87b299f3a92", "763f6b20f41a2c33"),
}


def feed(digest: Any, value: Any) -> None:
    """Add ``value`` (arrays, numbers, strings, None, and dicts, lists and tuples of them) to ``digest``."""
    if isinstance(value, dict):
        for key in sorted(value):
            digest.update(key.encode())
            feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"seq{len(value)}".encode())
        for item in value:
            feed(digest, item)
    elif isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.ndarray):
        feed(digest, value.tolist())
    else:
        digest.update(repr(value).encode())


def trajectory_digests(env_id: str, kwargs: dict[str, Any]) -> tuple[str, str]:
    """The digests of 50 seeded random steps of the vector env and of the single env."""
    rng = np.random.default_rng(123)
    digest = hashlib.sha256()
    vector = gym.make_vec(env_id, num_envs=16, vectorization_mode="vector_entry_point", info_text=True, **kwargs)
    feed(digest, vector.reset(seed=7))
    for _ in range(STEPS):
        feed(digest, vector.step(rng.integers(vector.single_action_space.n, size=16)))
    vector_digest = digest.hexdigest()[:16]
    digest = hashlib.sha256()
    single = gym.make(env_id, **kwargs)
    feed(digest, single.reset(seed=7))
    for _ in range(STEPS):
        step = single.step(int(rng.integers(single.action_space.n)))
        feed(digest, step)
        if step[2] or step[3]:
            feed(digest, single.reset())
    return vector_digest, digest.hexdigest()[:16]


@pytest.mark.parametrize(
    ("env_id", "kwargs"), list(PINNED), ids=[f"{env_id}{dict(kwargs)}" for env_id, kwargs in PINNED]
)
def test_seeded_trajectories_are_unchanged(env_id: str, kwargs: tuple[tuple[str, Any], ...]) -> None:
    assert trajectory_digests(env_id, dict(kwargs)) == PINNED[env_id, kwargs]
