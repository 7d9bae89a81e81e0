"""The dialogue's random draws: counter-based uniforms from each episode's key (no generator state)."""

from __future__ import annotations

from functools import cache

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
        counters = base.reshape(-1, 1) + offsets  # (m or 1, blocks)
        hashed = hash_keys(keys[:, None], counters)  # each key against its row of counters (broadcast)
    return _fields(hashed, m)


def _fields(hashed: np.ndarray, m: int) -> np.ndarray:
    """The four 16-bit fields of each of ``m`` rows of hashes, low field first on every platform, as uniforms."""
    fields = hashed.astype("<u8", copy=False).view("<u2").reshape(m, -1)
    return (fields + 0.5) * 2.0**-16


def episode_uniforms(keys: np.ndarray, goal_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """An episode's first draws, hashed in one call (on a small batch a hash call costs more than its work).

    Returns:
        ``uniforms(keys, GOAL_STREAM, 0, goal_blocks)``, and the draws of the first ``TurnDraws.BLOCK``
        turns, ``(len(keys), BLOCK, 4)``, whose row ``t`` is ``uniforms(keys, TURN_STREAM, t, 1)``.
    """
    m, counters = len(keys), _episode_counters(goal_blocks)
    draws = _fields(hash_keys(keys[:, None], counters), m)  # each key against every counter (broadcast)
    return draws[:, : 4 * goal_blocks], draws[:, 4 * goal_blocks :].reshape(m, TurnDraws.BLOCK, 4)


@cache
def _episode_counters(goal_blocks: int) -> np.ndarray:
    """The counters of :func:`episode_uniforms`: the goal stream's blocks, then the first turns' (read only)."""
    goal = np.arange(goal_blocks, dtype=np.uint64) * np.uint64(16) + np.uint64(GOAL_STREAM)
    turns = np.arange(TurnDraws.BLOCK, dtype=np.uint64) * np.uint64(64 * 16) + np.uint64(TURN_STREAM)
    counters = np.concatenate((goal, turns))
    counters.flags.writeable = False
    return counters


class TurnDraws:
    """Every episode slot's turn uniforms; in a small batch hashed ``BLOCK`` turns at a time.

    The draws of turn ``t`` are exactly ``uniforms(key, TURN_STREAM, t, 1)``. With at most
    ``SMALL`` slots (the single env) each slot keeps those of the block of turns it is in, and a
    slot whose turn leaves its block gets the next block: a turn costs a gather, not a dozen numpy
    calls. A larger batch hashes each turn as it comes: there the hashing itself costs more than
    the calls, and a block would be hashed in vain for the many calls that end early.

    Args:
        n: the episode slots.
    """

    BLOCK = 8
    SMALL = 16
    #: The most bytes a slot keeps (for memory estimates).
    SLOT_BYTES = 8 * 4 * BLOCK + 8

    def __init__(self, n: int) -> None:
        self.blocks = n <= self.SMALL
        kept = n if self.blocks else 0
        # Turn offset first, then the slot: the draws of turn ``t`` of slot ``s`` are the row
        # ``t * kept + base[s]`` of ``cells`` (one gather a turn), and a slot past its block asks for a
        # row past the table's end (an IndexError, never another slot's draws).
        self.table = np.zeros((self.BLOCK, kept, 4))
        self.cells = self.table.reshape(-1, 4)  # a view
        self.start = np.zeros(kept, dtype=np.int64)  # the first turn of each slot's block
        self._slots = np.arange(kept)
        self._width = np.array([kept])  # (a one-element array: a cheaper operand than a Python int)
        self.base = self._slots.copy()  # each slot's ``slot - start * kept``

    def fill(self, slots: np.ndarray | slice, keys: np.ndarray, start: np.ndarray) -> None:
        """Hash the block of turns ``start .. start + BLOCK - 1`` of ``slots`` (index array or slice; keys ``keys``)."""
        if self.blocks:
            self.put(slots, start, self.block(keys, start))

    def block(self, keys: np.ndarray, start: np.ndarray) -> np.ndarray:
        """``(m, BLOCK, 4)``: the draws of turns ``start ..`` of ``keys`` (a large batch: ``(m, 0, 4)``)."""
        if not self.blocks:
            return np.zeros((len(keys), 0, 4))
        turns = (start[:, None] + np.arange(self.BLOCK)).reshape(-1)
        draws = uniforms(keys.repeat(self.BLOCK), TURN_STREAM, turns, 1)
        return draws.reshape(len(start), self.BLOCK, 4)

    def put(self, slots: np.ndarray | slice, start: np.ndarray | int, draws: np.ndarray) -> None:
        """Keep ``draws`` ``(m, BLOCK, 4)``, hashed elsewhere, as the block of turns from ``start`` of ``slots``."""
        if not self.blocks:
            return
        self.table[:, slots] = draws.swapaxes(0, 1)
        self.start[slots] = start
        self.base[slots] = self._slots[slots] - start * self._width

    def take(self, keys: np.ndarray, turn: np.ndarray) -> np.ndarray:
        """``(n, 4)``: the draws of each slot's ``turn`` (``keys``: every slot's key)."""
        if not self.blocks:
            return uniforms(keys, TURN_STREAM, turn, 1)
        try:  # most turns every slot is inside its block (a turn past it is out of the table's bounds)
            return self.cells.take(turn * self._width + self.base, axis=0)
        except IndexError:
            slots = np.flatnonzero(turn - self.start >= self.BLOCK)
            self.fill(slots, keys[slots], turn[slots])
            return self.cells.take(turn * self._width + self.base, axis=0)
