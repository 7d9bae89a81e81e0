"""The belief update: the desk's exact Bayes posterior over each user's intent and slot values.

The evidence is what the channel heard (:class:`~nlp_envs.dialogue.channel.Readings`) and the
user's acts themselves, which are heard without noise: an answer about a slot rules out the
intents that do not need it, "that doesn't apply" rules out those that do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nlp_envs.core import count_nonzero
from nlp_envs.data.ontology import Ontology
from nlp_envs.dialogue.channel import Readings, Said

# On a small batch a numpy call with a Python scalar operand, or writing into its operand (``out=``,
# ``*=``), costs more than one with a one-element array operand that allocates its result.
_FLOOR = np.array([1e-12])  # the least likelihood of a value
_TINY = np.array([[1e-300]])  # the floor of a row's sum


def likelihood(value: np.ndarray, conf: np.ndarray, others: np.ndarray | int, ids: np.ndarray) -> np.ndarray:
    """``(h, width)``: P(reading | true value) up to a constant, for readings ``value`` of confidence ``conf``.

    A calibrated confidence ``c`` is the posterior of the reading under a uniform prior, so the
    likelihood is ``c`` at the heard value and ``(1 - c) / others`` elsewhere, where ``others`` is
    the number of other values of the reading's set (floored at 1e-12 so that no value is ruled out
    for good by a reading). ``ids`` is ``np.arange(width)`` (made once by the caller).
    """
    other = (1.0 - conf) / others
    result = np.where(ids == value[:, None], conf[:, None], other[:, None])
    return np.maximum(result, _FLOOR)


def normalised(rows: np.ndarray) -> np.ndarray:
    """Each row of ``rows`` ``(h, width)`` divided by its sum (a row of zeros stays zero)."""
    return rows / np.maximum(np.add.reduce(rows, axis=1, keepdims=True), _TINY)


@dataclass(frozen=True)
class Belief:
    """The desk's belief about every episode slot's user (first axis: the episode slot).

    State rule (all tasks): state is a frozen dataclass of separate arrays, one per quantity; none
    is a view into another, and the fields cannot be rebound (assigning one raises), so every
    update writes into the arrays in place (``belief.heard[rows] = ...``, ``out=``).

    Attributes:
        intent_belief: ``(n, n_intents)`` posterior over the intents.
        intent_heard: ``(n,)`` whether any intent has been heard.
        intent_value: ``(n,)`` the most probable intent.
        slot_belief: ``(n, n_slots, width)`` posterior over each slot's values (0 past its set).
        heard: ``(n, n_slots)`` whether a value has been heard (the slot is filled).
        slot_value: ``(n, n_slots)`` the most probable value.
        slot_conf: ``(n, n_slots)`` its probability (0 while unfilled).
        needed: ``(n, n_slots)`` the slots the believed intent needs, once an intent is heard.
        n_intents: the number of intents.
        required: ``(n_intents, n_slots)`` the ontology's table of the slots each intent needs.
        n_values: ``(n_slots,)`` the size of each slot's value set.
        uniform_rows: ``(n_slots, width)`` each slot's uniform prior.
        other_values: ``(n_slots,)`` ``n_values - 1``, the number of other values of each slot.
        value_ids: ``np.arange(width)``; intent_ids: ``np.arange(n_intents)`` (for the likelihoods).
        act_evidence: ``(1 + 2 * n_slots, n_intents)`` float: the likelihood of each intent given the
            user's act: row 0 all 1 (no act about a slot), row ``1 + k`` for an answer about slot ``k``
            (1 where the intent needs it), row ``1 + n_slots + k`` for "that doesn't apply" to slot
            ``k`` (1 where it does not).
    """

    intent_belief: np.ndarray
    intent_heard: np.ndarray
    intent_value: np.ndarray
    slot_belief: np.ndarray
    heard: np.ndarray
    slot_value: np.ndarray
    slot_conf: np.ndarray
    needed: np.ndarray
    n_intents: int
    required: np.ndarray
    n_values: np.ndarray
    uniform_rows: np.ndarray
    other_values: np.ndarray
    value_ids: np.ndarray
    intent_ids: np.ndarray
    act_evidence: np.ndarray

    @classmethod
    def allocate(cls, n: int, ontology: Ontology) -> Belief:
        """The prior belief of ``n`` episode slots about users of ``ontology``."""
        n_intents, n_slots, width = ontology.n_intents, ontology.n_slots, int(ontology.n_values.max())
        value_mask = np.arange(width)[None, :] < ontology.n_values[:, None]  # (K, V)
        uniform_rows = value_mask / ontology.n_values[:, None]
        return cls(
            intent_belief=np.full((n, n_intents), 1.0 / n_intents),
            intent_heard=np.zeros(n, dtype=bool),
            intent_value=np.zeros(n, dtype=np.int64),
            slot_belief=np.broadcast_to(uniform_rows, (n, n_slots, width)).copy(),
            heard=np.zeros((n, n_slots), dtype=bool),
            slot_value=np.zeros((n, n_slots), dtype=np.int64),
            slot_conf=np.zeros((n, n_slots)),
            needed=np.zeros((n, n_slots), dtype=bool),
            n_intents=n_intents,
            required=ontology.required,
            n_values=ontology.n_values,
            uniform_rows=uniform_rows,
            other_values=ontology.n_values - 1,
            value_ids=np.arange(width),
            intent_ids=np.arange(n_intents),
            act_evidence=np.concatenate(
                (np.ones((1, n_intents)), ontology.required.T, ~ontology.required.T), dtype=np.float64
            ),
        )

    def opening(self, said: Said, readings: Readings, intent_told: np.ndarray, first_slot: np.ndarray) -> Opening:
        """The belief about new users after their openings, one row per user (a function of its arguments).

        Args:
            said: what the openings said (rows: the users ``0 .. m - 1``; intents and channel B only).
            readings: what the channel heard of it.
            intent_told: ``(m,)`` whether each opening said the intent.
            first_slot: ``(m,)`` the first slot of each user's agenda (the one an opening volunteers).
        """
        m, n_slots = len(first_slot), len(self.n_values)
        intent_belief = np.empty((m, self.n_intents))
        intent_belief.fill(1.0 / self.n_intents)
        intent_value, needed = np.zeros(m, dtype=np.int64), np.zeros((m, n_slots), dtype=bool)
        if readings.n_intents:
            rows = said.intent_rows
            belief, believed, needs = self._weighed(intent_belief[rows], self._intent_likelihood(readings), True)
            intent_belief[rows], intent_value[rows], needed[rows] = belief, believed, needs
        heard, slot_value, slot_conf = (
            np.zeros((m, n_slots), dtype=bool),
            np.zeros((m, n_slots), np.int64),
            np.zeros((m, n_slots)),
        )
        first_belief = self.uniform_rows.take(first_slot, axis=0)
        rows, slots = said.b_rows, said.b_slots
        if len(rows):
            belief = self._slot_posterior(first_belief[rows], slots, said, readings)
            first_belief[rows] = belief
            slot_value[rows, slots], slot_conf[rows, slots] = belief.argmax(axis=1), np.maximum.reduce(belief, axis=1)
            heard[rows, slots] = True
        return Opening(
            intent_belief, intent_told, intent_value, heard, slot_value, slot_conf, needed, first_slot, first_belief
        )

    def start(self, picked: np.ndarray | slice, slots: np.ndarray, opening: Opening) -> None:
        """Episode slots ``slots`` (``picked``: the same as an index, a slice for one) take the rows of ``opening``."""
        self.intent_belief[picked] = opening.intent_belief
        self.intent_heard[picked] = opening.intent_heard
        self.intent_value[picked] = opening.intent_value
        self.heard[picked] = opening.heard
        self.slot_value[picked] = opening.slot_value
        self.slot_conf[picked] = opening.slot_conf
        self.needed[picked] = opening.needed
        # The prior, then the one slot an opening may have told: a whole row of slots is large.
        self.slot_belief[picked] = self.uniform_rows
        self.slot_belief[slots, opening.first_slot] = opening.first_belief

    def forget(self, rows: np.ndarray, slots: np.ndarray) -> None:
        """Back to the prior on slot ``slots`` of episode slots ``rows`` (the user changed its mind)."""
        self.heard[rows, slots] = False
        self.slot_value[rows, slots] = 0
        self.slot_conf[rows, slots] = 0.0
        self.slot_belief[rows, slots] = self.uniform_rows[slots]

    def hear_turn(self, said: Said, readings: Readings, act_rows: np.ndarray) -> bool:
        """Update every episode slot on one turn: what the channel heard and what the user's act rules out.

        Args:
            said: what the users said.
            readings: what the channel heard of it.
            act_rows: ``(n,)`` each episode slot's row of :attr:`act_evidence` (0: the act tells nothing
                about the intent; see :attr:`DeskActs.evidence_rows <nlp_envs.dialogue.acts.DeskActs.evidence_rows>`).

        Returns:
            Whether ``needed`` may have changed (see :meth:`weigh_intents`).
        """
        # The whole batch is weighed (a factor of 1 where nothing was learnt, which leaves the belief
        # as it was): the evidence of the user's acts is one gather, and an intent reading never
        # comes with an act about a slot (asking the intent or executing is not asking a slot).
        evidence = self.act_evidence.take(act_rows, axis=0)
        heard = bool(readings.n_intents)
        if heard:
            self.intent_heard[said.intent_rows] = True
            evidence[said.intent_rows] = self._intent_likelihood(readings)
        needed = self.weigh_intents(evidence, heard)
        self._hear_slots(said, readings)
        return needed

    def _intent_likelihood(self, readings: Readings) -> np.ndarray:
        """``(readings.n_intents, n_intents)``: the likelihood of each intent reading."""
        n_i = readings.n_intents
        return likelihood(readings.heard[:n_i], readings.conf[:n_i], self.n_intents - 1, self.intent_ids)

    def weigh_intents(self, evidence: np.ndarray, heard_now: bool = True) -> bool:
        """The intent Bayes update of every episode slot: multiply its belief by ``evidence`` and renormalise.

        Args:
            evidence: ``(n, n_intents)`` likelihoods; the true intent is never ruled out.
            heard_now: whether ``intent_heard`` may have changed since the last update.

        Returns:
            Whether ``needed`` may have changed (it was written).
        """
        belief = normalised(self.intent_belief * evidence)
        believed = belief.argmax(axis=1)
        self.intent_belief[...] = belief
        # The slots the believed intent needs, where an intent was heard (as in _weighed): they change only
        # when the believed intent moves or an intent is heard (most turns of a small batch: neither, and
        # the writes are skipped after a comparison).
        if count_nonzero(believed != self.intent_value):
            self.intent_value[...] = believed
        elif not heard_now:
            return False
        # Heard in no episode slot (a count costs a fraction of the gather): none is needed, as before this turn.
        heard = self.intent_heard
        knowing = count_nonzero(heard)
        if knowing:
            needed = self.required.take(believed, axis=0)
            self.needed[...] = needed if knowing == len(heard) else needed & heard[:, None]
        return bool(knowing)

    def _weighed(
        self, belief: np.ndarray, evidence: np.ndarray, heard: np.ndarray | bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Intent beliefs ``(h, n_intents)`` times ``evidence``, renormalised; their most probable intents; its slots.

        ``heard``: ``(h, 1)`` (or one bool for all) whether an intent has been heard (no slot is needed before).
        """
        belief = normalised(belief * evidence)
        believed = belief.argmax(axis=1)
        return belief, believed, self.required.take(believed, axis=0) & heard

    def _hear_slots(self, said: Said, readings: Readings) -> None:
        """The slot-value Bayes update on the slot readings (see :meth:`_slot_posterior`)."""
        if not len(said.a_rows) + len(said.b_rows):  # no slot value said (most turns of a small batch)
            return
        # Flat (row, slot) cells: a take and puts cost a fraction of two-array fancy indexing on a small batch.
        slots = said.slots
        cells = said.slot_rows * len(self.n_values) + slots
        by_cell = self.slot_belief.reshape(-1, self.slot_belief.shape[2])  # a view: (row, slot) cells, then values
        belief = self._slot_posterior(by_cell.take(cells, axis=0), slots, said, readings)
        by_cell[cells] = belief
        self.slot_value.put(cells, belief.argmax(axis=1))
        self.slot_conf.put(cells, np.maximum.reduce(belief, axis=1))
        self.heard.put(cells, True)

    def _slot_posterior(self, belief: np.ndarray, slots: np.ndarray, said: Said, readings: Readings) -> np.ndarray:
        """The beliefs ``belief`` about the slots ``said`` told (``slots``: ``said.slots``), updated on their readings.

        A value the user has just denied gets probability 0; values outside a slot's set stay 0.
        """
        value, conf = readings.heard[readings.n_intents :], readings.conf[readings.n_intents :]
        denied = said.denied
        was_denied = denied >= 0
        if count_nonzero(was_denied):
            belief[was_denied, denied[was_denied]] = 0.0
        return normalised(belief * likelihood(value, conf, self.other_values[slots], self.value_ids))


class Opening(NamedTuple):
    """The desk's belief about new users after their openings (:meth:`Belief.opening`; first axis: the user).

    An opening tells at most the intent and one slot value, the first of the user's agenda, so the
    belief about the other slots' values is their prior: of ``slot_belief`` only that slot's row is kept.

    Attributes:
        intent_belief: ``(m, n_intents)``; intent_heard: ``(m,)``; intent_value: ``(m,)``: as in :class:`Belief`.
        heard: ``(m, n_slots)``; slot_value: ``(m, n_slots)``; slot_conf: ``(m, n_slots)``;
            needed: ``(m, n_slots)``: as in :class:`Belief`.
        first_slot: ``(m,)`` the first slot of each user's agenda.
        first_belief: ``(m, width)`` the belief about its value (its prior unless the opening told it).
    """

    intent_belief: np.ndarray
    intent_heard: np.ndarray
    intent_value: np.ndarray
    heard: np.ndarray
    slot_value: np.ndarray
    slot_conf: np.ndarray
    needed: np.ndarray
    first_slot: np.ndarray
    first_belief: np.ndarray
