"""The noisy channel: what the desk's understanding hears of what the user says, with a confidence.

The user simulator decides *what* is said (:class:`Said`); this module turns it into
:class:`Readings` (true value, value heard, calibrated confidence), which the belief update reads.
The random draws come from :mod:`nlp_envs.dialogue.draws`.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from nlp_envs.core import count_nonzero


class Said(NamedTuple):
    """The items the users said in one turn, by channel (all arrays index episode slots or slots).

    Readings are ordered intent readings first, then channel A, then channel B.

    Attributes:
        intent_rows: episode slots whose user said its intent, shape ``(i,)``.
        a_rows: episode slots whose user said a slot value on channel A (the slot asked about, or
            the first wrong one after a failed execution), shape ``(a,)``.
        a_slots: the slot of each channel-A value, shape ``(a,)``.
        b_rows: episode slots whose user said one more value on channel B (volunteered, or the
            value of a changed mind), shape ``(b,)``.
        b_slots: the slot of each channel-B value, shape ``(b,)``.
        affirmed: ``(a,)`` bool: the channel-A item is a "yes" to a confirmation (heard for sure).
        confirmed: ``(a,)`` the value the desk confirmed (what an affirmation is heard as).
        denied: ``(a + b,)`` the value the user has just denied with a "no", -1 for none.
    """

    intent_rows: np.ndarray
    a_rows: np.ndarray
    a_slots: np.ndarray
    b_rows: np.ndarray
    b_slots: np.ndarray
    affirmed: np.ndarray
    confirmed: np.ndarray
    denied: np.ndarray

    @property
    def slot_rows(self) -> np.ndarray:
        """The episode slots of the slot-value readings (channel A, then B; read only)."""
        return joined([self.a_rows, self.b_rows])

    @property
    def slots(self) -> np.ndarray:
        """The slot of each slot-value reading (channel A, then B; read only)."""
        return joined([self.a_slots, self.b_slots])


class Readings(NamedTuple):
    """What the understanding made of a :class:`Said`, one entry per item in its order.

    Attributes:
        truth: the value the user meant.
        heard: the value the understanding heard.
        conf: its calibrated confidence (the posterior that ``heard`` is right).
        n_intents: how many of the entries (the first ones) are intent readings.
    """

    truth: np.ndarray
    heard: np.ndarray
    conf: np.ndarray
    n_intents: int


def _read_only(array: np.ndarray) -> np.ndarray:
    """``array``, made read only (for the shared empty records)."""
    array.flags.writeable = False
    return array


#: The readings of a turn in which nothing was said (one shared record: its arrays are read only).
NOTHING_HEARD = Readings(
    _read_only(np.empty(0, np.int64)), _read_only(np.empty(0, np.int64)), _read_only(np.empty(0)), 0
)
_NO_ITEMS = _read_only(np.empty(0, np.int64))
#: What users said in a turn in which none said anything (one shared record: its arrays are read only).
NOTHING_SAID = Said(
    _NO_ITEMS, _NO_ITEMS, _NO_ITEMS, _NO_ITEMS, _NO_ITEMS, _read_only(np.empty(0, bool)), _NO_ITEMS, _NO_ITEMS
)
#: The channel's draws of a turn in which nothing was said (read only).
NO_DRAWS = (_read_only(np.empty(0)), _read_only(np.empty(0)), _read_only(np.empty(0)))


def hear(
    said: Said,
    *,
    goal_intent: np.ndarray,
    goal_values: np.ndarray,
    intent_sizes: np.ndarray,
    n_values: np.ndarray,
    draws: tuple[np.ndarray, np.ndarray, np.ndarray],
    error_rate: float,
) -> Readings:
    """Pass everything in ``said`` through the channel.

    Args:
        said: what the users said.
        goal_intent: every episode's goal intent, shape ``(n,)``.
        goal_values: every episode's goal values, shape ``(n, n_slots)``.
        intent_sizes: ``(>= len(said.intent_rows),)`` the number of intents, repeated (preallocated).
        n_values: the number of values of each slot, shape ``(n_slots,)``.
        draws: one uniform per intent, channel-A and channel-B item.
        error_rate: the semantic error rate.

    Returns:
        The readings; an affirmation is heard as the confirmed value with confidence 1.
    """
    n_i, n_a, n_b = len(said.intent_rows), len(said.a_rows), len(said.b_rows)
    if not n_i + n_a + n_b:  # nothing said (common in a small batch): no channel work
        return NOTHING_HEARD
    # Each channel's items, in order; a small batch often uses one channel, and skips the others.
    truths, sizes, uniform = [], [], []
    if n_i:
        truths.append(goal_intent[said.intent_rows])
        sizes.append(intent_sizes[:n_i])
        uniform.append(draws[0])
    if n_a:
        truths.append(goal_values[said.a_rows, said.a_slots])
        sizes.append(n_values[said.a_slots])
        uniform.append(draws[1])
    if n_b:
        truths.append(goal_values[said.b_rows, said.b_slots])
        sizes.append(n_values[said.b_slots])
        uniform.append(draws[2])
    truth = joined(truths)
    heard, conf = noisy(truth, joined(sizes), joined(uniform), error_rate)
    sure = said.affirmed
    if count_nonzero(sure):
        heard[n_i : n_i + n_a][sure] = said.confirmed[sure]
        conf[n_i : n_i + n_a][sure] = 1.0
    return Readings(truth, heard, conf, n_i)


_LOWEST, _HIGHEST = np.array([0.02]), np.array([0.98])  # the bounds of a confidence


@cache
def _noise_terms(error_rate: float) -> tuple[np.ndarray, ...]:
    """``e``, ``1 / (1 - e)``, ``1 - e`` and ``1 - 2 e`` as one-element arrays (cheaper operands than Python floats)."""
    e = error_rate
    return tuple(_read_only(np.array([value])) for value in (e, 1.0 / (1.0 - e), 1.0 - e, 1.0 - 2.0 * e))  # shared


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """The arrays of ``parts`` end to end: without a copy (read only) when only one is not empty."""
    full = [part for part in parts if len(part)]
    return full[0] if len(full) == 1 else np.concatenate(parts)


def noisy(true: np.ndarray, size: np.ndarray, draw: np.ndarray, error_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """What the understanding hears of ``true`` values (of sets of ``size``), and its calibrated confidence.

    One uniform ``draw`` per reading decides all: below ``error_rate`` the value becomes another
    one (uniformly), and what is left of the draw (uniform again) gives the score: ``sqrt(v)``
    for a right reading, ``1 - sqrt(v)`` for a wrong one. The confidence is the posterior that
    the reading is right given the score, so it is calibrated (and 1 without noise).
    """
    e = error_rate
    if e == 0.0:
        conf = np.empty(true.shape)
        conf.fill(1.0)  # np.ones is a Python wrapper: several times the cost of empty + fill
        return true.copy(), conf
    rate, right_scale, right_weight, mixed_weight = _noise_terms(e)
    error = draw < rate
    if count_nonzero(error):
        scaled = draw * ((size - 1) * (1.0 / e))  # for errors: uniform in [0, size - 1)
        pick = scaled.astype(np.int64)
        wrapped = true + 1 + pick
        wrapped = wrapped - size * (wrapped >= size)
        heard = np.where(error, wrapped, true)
        score = np.sqrt(np.where(error, scaled - pick, (draw - rate) * right_scale))
        np.subtract(1.0, score, out=score, where=error)
    else:  # every reading is right (most turns of a small batch): the same values without the error parts
        heard = true.copy()
        score = np.sqrt((draw - rate) * right_scale)
    conf = score * right_weight / (score * mixed_weight + rate)
    # Clipped to [0.02, 0.98] by array operands, allocating (np.clip, Python scalars and out= each cost
    # more on a small batch).
    return heard, np.minimum(np.maximum(conf, _LOWEST), _HIGHEST)
