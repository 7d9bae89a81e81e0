"""The two vocabularies of the call: the desk's acts (the action ids) and the user's acts.

``USER_ACTS`` names the columns of the observation's multi-hot "user's last acts". (The ontology's
``PHRASED_USER_ACTS`` are the acts with utterance templates of their own: a different list.)
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DeskTurn:
    """One act per episode slot, decoded, with the belief it carries (what the user hears from the desk).

    The kind masks are not restricted to live calls; ``slot`` is the slot a request or confirm is
    about (a valid index for the other acts). The belief arrays are the desk's own (not copies):
    a confirmation says the believed value, an execution does the believed task.

    Attributes:
        rows: the episode slots ``0 .. n - 1`` (for indexing).
        actions: the action ids, shape ``(n,)``.
        ask: ask for the intent.
        request: request ``slot``.
        confirm: confirm ``slot`` (its believed value).
        execute: execute the believed intent with the believed values.
        handoff: hand off to a human.
        ending: hand off or close.
        slot: the slot a request or confirm is about.
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
    execute: np.ndarray
    handoff: np.ndarray
    ending: np.ndarray
    slot: np.ndarray
    intent_heard: np.ndarray
    intent: np.ndarray
    filled: np.ndarray
    values: np.ndarray

    @property
    def close(self) -> np.ndarray:
        """Close the call."""
        return self.ending & ~self.handoff
