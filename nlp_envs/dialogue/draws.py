"""The dialogue's random draws: counter-based uniforms from each episode's key (no generator state)."""

from __future__ import annotations

import numpy as np

from nlp_envs.core import hash_keys

TURN_STREAM, GOAL_STREAM = 0, 1  # a turn's draws (channel noise, volunteering); the episode's (goal, opening)


def uniforms(keys: np.ndarray, stream: int, counter: np.ndarray | int, blocks: int) -> np.ndarray:
    """``(len(keys), 4 * blocks)`` uniforms in ``(0, 1)`` (16-bit resolution) from counter-based hashes.

    One 64-bit hash (``core.hash_keys``) of ``(key, (counter * 64 + block) * 16 + stream)`` gives
    four 16-bit fields, so a turn's four draws cost one hash per slot. Streams (< 16) keep the
    episode's draws and each turn's draws independent; ``blocks`` must be at most 64.
    """
    m = len(keys)
    base = np.asarray(counter, dtype=np.uint64) * np.uint64(64 * 16) + np.uint64(stream)
    if blocks == 1:  # a turn's draws: block 0's counter is the base itself
        hashed = hash_keys(keys, base)
    else:
        offsets = np.arange(blocks, dtype=np.uint64) * np.uint64(16)
        counters = np.reshape(base, (-1, 1)) + offsets  # (m or 1, blocks)
        hashed = hash_keys(np.repeat(keys, blocks).reshape(m, blocks), counters)
    # The four 16-bit fields of each hash, low field first on every platform.
    fields = hashed.astype("<u8", copy=False).view("<u2").reshape(m, 4 * blocks)
    return (fields + 0.5) * 2.0**-16
