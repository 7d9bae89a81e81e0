"""The two vocabularies of the call: the desk's acts (the action ids) and the user's acts.

``USER_ACTS`` names the columns of the observation's multi-hot "user's last acts". (The ontology's
``PHRASED_USER_ACTS`` are the acts with utterance templates of their own: a different list.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

USER_ACTS = (
    "greet",
    "inform",
    "repeat",
    "irrelevant",
    "affirm",
    "negate",
    "change",
    "complain",
    "thank",
    "hangup",
    "bye",
)
GREET, INFORM, REPEAT, IRRELEVANT, AFFIRM, NEGATE, CHANGE, COMPLAIN, THANK, HANGUP, BYE = range(len(USER_ACTS))


#: The kinds of desk act, the rows of :attr:`DeskActs.kind_table` (and fields of :class:`DeskTurn`):
#: ``asks_slot`` is a request or a confirm, ``ending`` a hand-off or a close, ``staying`` not
#: ending, ``talking`` neither ending nor executing (a turn where the user may change its mind).
DESK_KINDS = (
    "ask",
    "request",
    "confirm",
    "asks_slot",
    "execute",
    "handoff",
    "close",
    "ending",
    "staying",
    "talking",
)


@dataclass(frozen=True)
class DeskActs:
    """The action ids of an ontology with ``n_slots`` slots.

    ``0`` asks the intent, ``1 + k`` requests slot ``k``, ``n_slots + 1 + k`` confirms it, then
    execute, hand off and close. ``opening`` is not an action: it marks the opening turn in the text.
    """

    n_slots: int

    ask = 0

    @property
    def execute(self) -> int:
        """Execute the believed task."""
        return 2 * self.n_slots + 1

    @property
    def handoff(self) -> int:
        """Hand off to a human (ends the call)."""
        return 2 * self.n_slots + 2

    @property
    def close(self) -> int:
        """Close the call."""
        return 2 * self.n_slots + 3

    @property
    def opening(self) -> int:
        """The pseudo-act of the opening turn (the desk's greeting), for the text only."""
        return 2 * self.n_slots + 4

    @property
    def n(self) -> int:
        """The number of actions."""
        return 2 * self.n_slots + 4

    @cached_property
    def kind_table(self) -> np.ndarray:
        """``(len(DESK_KINDS), n)`` bool: row ``j`` marks the actions of kind ``DESK_KINDS[j]``."""
        acts, n_slots = np.arange(self.n), self.n_slots
        request = (acts >= 1) & (acts <= n_slots)
        confirm = (acts > n_slots) & (acts <= 2 * n_slots)
        handoff, close, execute = acts == self.handoff, acts == self.close, acts == self.execute
        ending = handoff | close
        kinds = {
            "ask": acts == self.ask,
            "request": request,
            "confirm": confirm,
            "asks_slot": request | confirm,
            "execute": execute,
            "handoff": handoff,
            "close": close,
            "ending": ending,
            "staying": ~ending,
            "talking": ~(ending | execute),
        }
        return np.stack([kinds[name] for name in DESK_KINDS])

    @cached_property
    def evidence_rows(self) -> np.ndarray:
        """``(2, n)``: each act's row of the belief's ``act_evidence`` for the user's answer or "that doesn't apply".

        ``[0, action]`` (answered) is ``1 + k`` and ``[1, action]`` ("that doesn't apply") is
        ``1 + n_slots + k`` for a request or confirm of slot ``k``; both are 0 for the acts that
        ask no slot (see :class:`~nlp_envs.dialogue.belief.Belief`).
        """
        asks_slot = self.kind_table[DESK_KINDS.index("asks_slot")]
        answered = np.where(asks_slot, 1 + self.slot_table, 0)
        return np.stack((answered, np.where(asks_slot, answered + self.n_slots, 0)))

    @cached_property
    def slot_table(self) -> np.ndarray:
        """``(n,)``: the slot a request or confirm is about (a valid slot index for the other acts)."""
        acts, n_slots = np.arange(self.n), self.n_slots
        confirm = (acts > n_slots) & (acts <= 2 * n_slots)
        return np.remainder(np.where(confirm, acts - (n_slots + 1), acts - 1), n_slots)


class DeskTurn(NamedTuple):
    """One act per episode slot, decoded, with the belief it carries (what the user hears from the desk).

    The kind masks (one per :data:`DESK_KINDS`) are restricted to live calls, where the call goes on
    and the task is not done (every part of a turn asks "a live call whose desk did this": an act in
    a call that is over or done does nothing); ``slot`` is the slot a request or confirm is about (a
    valid index for the other acts). The belief arrays are the desk's own (not copies): a
    confirmation says the believed value, an execution does the believed task.

    Attributes:
        rows: the episode slots ``0 .. n - 1`` (for indexing).
        actions: the action ids, shape ``(n,)``.
        ask: ask for the intent.
        request: request ``slot``.
        confirm: confirm ``slot`` (its believed value).
        asks_slot: request or confirm.
        execute: execute the believed intent with the believed values.
        handoff: hand off to a human.
        close: close the call.
        ending: hand off or close.
        staying: not ending.
        talking: neither ending nor executing.
        slot: the slot a request or confirm is about.
        cell: ``rows * n_slots + slot``, the flat index of ``(row, slot)`` in the C-ordered
            ``(n, n_slots)`` arrays (``array.take(cell)``: one cheap gather instead of fancy indexing).
        intent_heard: ``(n,)`` whether the desk has heard an intent.
        intent: ``(n,)`` the believed intent.
        filled: ``(n, n_slots)`` whether the desk has heard each slot.
        values: ``(n, n_slots)`` the believed values.
    """

    rows: np.ndarray
    actions: np.ndarray
    ask: np.ndarray
    request: np.ndarray
    confirm: np.ndarray
    asks_slot: np.ndarray
    execute: np.ndarray
    handoff: np.ndarray
    close: np.ndarray
    ending: np.ndarray
    staying: np.ndarray
    talking: np.ndarray
    slot: np.ndarray
    cell: np.ndarray
    intent_heard: np.ndarray
    intent: np.ndarray
    filled: np.ndarray
    values: np.ndarray
