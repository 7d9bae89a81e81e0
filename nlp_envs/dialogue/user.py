"""The user simulator: an agenda-based customer with a hidden goal, who may change its mind.

It reads the desk's act (:class:`~nlp_envs.dialogue.acts.DeskTurn`, which carries the belief the
act states) and answers with a :class:`Reply`: its acts and what it said (a
:class:`~nlp_envs.dialogue.channel.Said`, which the channel then reads). It never sees how the
desk's belief is updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nlp_envs.core import count_nonzero
from nlp_envs.data.ontology import Ontology
from nlp_envs.dialogue.acts import GREET, INFORM, USER_ACTS, DeskTurn
from nlp_envs.dialogue.channel import NO_DRAWS, NOTHING_SAID, Said

NEVER = np.iinfo(np.int64).max // 2  # the change turn of a user that keeps its mind

# Whether any slot of a turn does something is asked with ``count_nonzero(mask)`` (see nlp_envs.core): on the small
# batches of the single env it costs a third of ``mask.any()`` (a Python wrapper around a reduce).


@dataclass(frozen=True)
class UserState:
    """Every episode slot's user (first axis: the episode slot).

    State rule (all tasks): see :class:`~nlp_envs.dialogue.belief.Belief`; one exception: ``acts`` is a
    view of ``act_cells`` (the same quantity, which a turn writes in one call).

    Attributes:
        keys: ``(n,)`` uint64 episode keys (all the user's randomness, and the text's).
        start_intent: ``(n,)`` the goal intent at the start.
        start_values: ``(n, n_slots)`` the goal values at the start (before a changed mind).
        goal_intent: ``(n,)`` the goal intent.
        goal_values: ``(n, n_slots)`` the goal values now.
        goal_required: ``(n, n_slots)`` the slots the goal's intent needs.
        change_turn: ``(n,)`` the turn from which the user changes its mind (``NEVER``: it won't).
        change_slot: ``(n,)`` the slot it changes (left as it was for a user that keeps its mind).
        change_value: ``(n,)`` the new value (likewise).
        intent_told: ``(n,)`` whether it has said its intent.
        told: ``(n, n_slots)`` whether it has said each slot's value.
        affirmed: ``(n, n_slots)`` whether it has affirmed each slot.
        useless: ``(n,)`` useless turns so far (at ``patience`` it hangs up).
        acts: ``(n, len(USER_ACTS))`` its last acts, multi-hot: the transpose of ``act_cells`` (a view).
        act_cells: ``(len(USER_ACTS) * n,)`` the same cells, one act after the other (a turn writes all
            its acts into them in one concatenation).
    """

    keys: np.ndarray
    start_intent: np.ndarray
    start_values: np.ndarray
    goal_intent: np.ndarray
    goal_values: np.ndarray
    goal_required: np.ndarray
    change_turn: np.ndarray
    change_slot: np.ndarray
    change_value: np.ndarray
    intent_told: np.ndarray
    told: np.ndarray
    affirmed: np.ndarray
    useless: np.ndarray
    acts: np.ndarray
    act_cells: np.ndarray

    @classmethod
    def allocate(cls, n: int, n_slots: int) -> UserState:
        """The state of ``n`` episode slots (filled by :meth:`start`)."""
        act_cells = np.zeros(len(USER_ACTS) * n, dtype=bool)
        return cls(
            keys=np.zeros(n, dtype=np.uint64),
            start_intent=np.zeros(n, dtype=np.int64),
            start_values=np.zeros((n, n_slots), dtype=np.int64),
            goal_intent=np.zeros(n, dtype=np.int64),
            goal_values=np.zeros((n, n_slots), dtype=np.int64),
            goal_required=np.zeros((n, n_slots), dtype=bool),
            change_turn=np.full(n, NEVER, dtype=np.int64),
            change_slot=np.zeros(n, dtype=np.int64),
            change_value=np.zeros(n, dtype=np.int64),
            intent_told=np.zeros(n, dtype=bool),
            told=np.zeros((n, n_slots), dtype=bool),
            affirmed=np.zeros((n, n_slots), dtype=bool),
            useless=np.zeros(n, dtype=np.int64),
            acts=act_cells.reshape(len(USER_ACTS), n).T,
            act_cells=act_cells,
        )

    def start(self, picked: np.ndarray | slice, new: NewUsers) -> None:
        """New users ``new`` (rows in the order of ``picked``) in episode slots ``picked`` (an index or a slice)."""
        self.keys[picked] = new.keys
        self.start_intent[picked] = self.goal_intent[picked] = new.intent
        self.start_values[picked] = self.goal_values[picked] = new.values
        self.goal_required[picked] = new.required
        self.change_turn[picked] = new.change_turn
        self.change_slot[picked] = new.change_slot
        self.change_value[picked] = new.change_value
        self.intent_told[picked] = new.intent_told
        self.told[picked] = new.told
        self.affirmed[picked] = False
        self.useless[picked] = 0
        self.acts[picked] = new.acts


class NewUsers(NamedTuple):
    """New users, one per episode key (:meth:`UserSimulator.draw`; first axis: the key).

    Attributes:
        keys: ``(m,)`` their episode keys.
        intent: ``(m,)`` the goal intent.
        values: ``(m, n_slots)`` the goal values.
        required: ``(m, n_slots)`` the slots the goal's intent needs.
        change_turn: ``(m,)`` the turn from which the user changes its mind (``NEVER``: it won't).
        change_slot: ``(m,)`` the slot it changes (0 for a user that keeps its mind).
        change_value: ``(m,)`` the new value (likewise).
        intent_told: ``(m,)`` whether its opening said the intent.
        told: ``(m, n_slots)`` the slot value its opening volunteered.
        acts: ``(m, len(USER_ACTS))`` the opening's acts.
    """

    keys: np.ndarray
    intent: np.ndarray
    values: np.ndarray
    required: np.ndarray
    change_turn: np.ndarray
    change_slot: np.ndarray
    change_value: np.ndarray
    intent_told: np.ndarray
    told: np.ndarray
    acts: np.ndarray


class Utterance(NamedTuple):
    """What users said (an opening; a :class:`Reply` starts with the same three fields).

    Attributes:
        acts: ``(m, len(USER_ACTS))`` the acts, multi-hot (all False for calls already over).
        said: what was said, for the channel.
        draws: the channel's uniform per intent, channel-A and channel-B item of ``said``.
    """

    acts: np.ndarray
    said: Said
    draws: tuple[np.ndarray, np.ndarray, np.ndarray]


class Reply(NamedTuple):
    """The users' answer to one desk turn (all ``(n,)`` unless said otherwise).

    Attributes:
        acts: ``(n, len(USER_ACTS))`` the acts, multi-hot (all False for calls already over): the
            user state's ``acts`` (not a copy: the next turn overwrites it).
        said: what was said, for the channel.
        draws: the channel's uniform per intent, channel-A and channel-B item of ``said``.
        irrelevant: the desk requested or confirmed a slot in a live call and the user said "that
            doesn't apply" (its intent does not need the slot).
        thank: the right task was executed.
        complain: a wrong task was executed.
        hangup: the user hangs up (out of patience).
        bye: the user says goodbye (the desk ended the call, or acted after the task was done).
        executing: whether any desk executed a task this turn (else ``thank`` and ``complain`` are
            all False).
    """

    acts: np.ndarray
    said: Said
    draws: tuple[np.ndarray, np.ndarray, np.ndarray]
    irrelevant: np.ndarray
    thank: np.ndarray
    complain: np.ndarray
    hangup: np.ndarray
    bye: np.ndarray
    executing: bool


_NO_FLAGS = np.zeros(0, dtype=bool)  # the opening's (empty) channel-A flags, shared: read only
_NO_FLAGS.flags.writeable = False
_NO_DRAWS = np.zeros(0)  # the opening's (empty) channel-A draws, shared: read only
_NO_DRAWS.flags.writeable = False


def no_denials(count: int) -> np.ndarray:
    """``count`` times -1, the ``denied`` of readings that deny nothing (``np.full`` costs several times more)."""
    denied = np.empty(count, dtype=np.int64)
    denied.fill(-1)
    return denied


class UserSimulator:
    """The user model: its parameters and the ontology tables it uses (no state; see :class:`UserState`).

    Args:
        ontology: the intents, slots and values.
        patience: useless turns after which the user hangs up.
        p_open_intent: probability of opening with the intent (else a greeting).
        p_volunteer: probability of volunteering the next untold slot of the agenda with an answer.
        p_change: probability of changing one told value during the call.
    """

    def __init__(
        self, ontology: Ontology, *, patience: int, p_open_intent: float, p_volunteer: float, p_change: float
    ) -> None:
        self.ontology, self.patience = ontology, patience
        self.p_open_intent, self.p_volunteer, self.p_change = p_open_intent, p_volunteer, p_change
        # The same as one-element arrays: a cheaper operand than a Python number on a small batch.
        self._patience = np.array([patience])
        self._p_open_intent, self._p_volunteer, self._p_change = (
            np.array([p_open_intent]),
            np.array([p_volunteer]),
            np.array([p_change]),
        )
        # The number of slots each intent needs, and its slots in the order the user tells them.
        self.slot_counts = np.array([len(slots) for slots in ontology.intent_slots], dtype=np.int64)
        # The number of choices of a goal's parts: its intent, then each slot's value (one product for all).
        self.goal_sizes = np.concatenate(([ontology.n_intents], ontology.n_values)).astype(np.int64)
        self.goal_highest = self.goal_sizes - 1
        self.agenda = np.zeros((ontology.n_intents, int(self.slot_counts.max())), dtype=np.int64)
        for intent, slots in enumerate(ontology.intent_slots):
            self.agenda[intent, : len(slots)] = slots
        self.first_slot = self.agenda[:, 0].copy()  # what a user volunteers with its opening intent
        # The opening's acts (a row of USER_ACTS) without and with the intent: a greeting, or an inform.
        self.opening_acts = np.zeros((2, len(USER_ACTS)), dtype=bool)
        self.opening_acts[0, GREET] = self.opening_acts[1, INFORM] = True
        self.opening_acts.flags.writeable = False
        self._nevers: dict[int, np.ndarray] = {}  # its rows are the opening turns' acts in a one-slot core's text

    def goals(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Goals from uniform ``draws`` ``(m, >= n_slots + 1)``: intents ``(m,)``, values ``(m, n_slots)``."""
        sizes = self.goal_sizes
        goals = (draws[:, : len(sizes)] * sizes).astype(np.int64)
        goals = np.minimum(goals, self.goal_highest)
        return goals[:, 0], goals[:, 1:]

    def draw(
        self, keys: np.ndarray, intents: np.ndarray, values: np.ndarray, draws: np.ndarray
    ) -> tuple[NewUsers, Utterance]:
        """New users with goals ``(intents, values)``, one per key (row ``i``: ``keys[i]``): their state and opening.

        A function of its arguments alone, row by row (the single env draws its next episodes ahead);
        :meth:`UserState.start` writes the users into episode slots. The opening's rows index the keys.

        ``draws`` ``(m, 8)``: change coin, change turn, change slot, change value, opening coin,
        volunteer coin, then the channel's draws for the opening's intent and volunteered slot.
        """
        u = draws
        m, n_slots = len(keys), self.ontology.n_slots
        rows = np.arange(m)
        # A changed mind is planned only for the users that will change it (most keep theirs).
        change_turn, change_slot, change_value = np.empty(m, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64)
        change_turn.fill(NEVER)  # np.full is a Python wrapper: several times the cost of empty + fill
        changes = u[:, 0] < self._p_change
        if count_nonzero(changes):
            self._plan_changes(change_turn, change_slot, change_value, changes, intents, values, u)
        # The opening: the intent (and maybe the first slot of the agenda), or a greeting.
        by_use = u.T  # a row per use: one-axis gathers
        open_intent = by_use[4] < self._p_open_intent
        volunteer = open_intent & (by_use[5] < self._p_volunteer)
        said_i, said_b, slots_b = rows[open_intent], rows[volunteer], self.first_slot[intents[volunteer]]
        told = np.zeros((m, n_slots), dtype=bool)
        told[said_b, slots_b] = True
        acts = self.opening_acts[open_intent.view(np.int8)]
        required = self.ontology.required.take(intents, axis=0)
        users = NewUsers(
            keys, intents, values, required, change_turn, change_slot, change_value, open_intent, told, acts
        )
        nothing = rows[:0]
        said = Said(said_i, nothing, nothing, said_b, slots_b, _NO_FLAGS, nothing, no_denials(len(said_b)))
        return users, Utterance(acts, said, (by_use[6][open_intent], _NO_DRAWS, by_use[7][volunteer]))

    def _plan_changes(
        self,
        change_turn: np.ndarray,
        change_slot: np.ndarray,
        change_value: np.ndarray,
        changes: np.ndarray,
        intents: np.ndarray,
        values: np.ndarray,
        u: np.ndarray,
    ) -> None:
        """The changed minds of the new users ``changes`` (a mask), written into the three arrays (see :meth:`draw`)."""
        intents, values, u = intents[changes], values[changes], u[changes]
        counts = self.slot_counts[intents]
        changing = self.agenda[intents, np.minimum((u[:, 2] * counts).astype(np.int64), counts - 1)]
        size = self.ontology.n_values[changing]
        shift = 1 + np.minimum((u[:, 3] * (size - 1)).astype(np.int64), size - 2)
        change_turn[changes] = 1 + (u[:, 1] * 4).astype(np.int64)
        change_slot[changes] = changing
        change_value[changes] = (values[np.arange(len(intents)), changing] + shift) % size

    def _never(self, n: int) -> np.ndarray:
        """``n`` times False, one shared read-only array per batch size (an act nobody does this turn)."""
        never = self._nevers.get(n)
        if never is None:
            never = self._nevers[n] = np.zeros(n, dtype=bool)
            never.flags.writeable = False
        return never

    def change_mind(self, user: UserState, desk: DeskTurn, turn: np.ndarray) -> np.ndarray | None:
        """Users whose turn to change their mind has come alter one told value; return who did ``(n,)``.

        Never on a turn that ends the call or executes: the change would go unheard. None when
        nobody did (most turns: the callers skip the parts about a changed mind without a test).
        """
        due = turn >= user.change_turn
        if not count_nonzero(due):  # most turns: nobody's time has come (the rest of the test is skipped)
            return None
        rows = desk.rows
        change_slot = user.change_slot
        change = due & desk.talking & user.told[rows, change_slot]
        if not count_nonzero(change):
            return None
        hit, slot = rows[change], change_slot[change]
        user.goal_values[hit, slot] = user.change_value[change]
        user.told[hit, slot] = user.affirmed[hit, slot] = False
        user.change_turn[hit] = NEVER
        return change

    def respond(
        self, user: UserState, desk: DeskTurn, change: np.ndarray | None, active: np.ndarray, draws: np.ndarray
    ) -> Reply:
        """The users' answers to the desk's acts (after :meth:`change_mind`).

        Parts that concern no episode slot this turn (an execution, a volunteered or changed value,
        an affirmation) are skipped after one ``any()``: a small batch pays for what happens in it.

        Args:
            user: the users.
            desk: the desk's acts.
            change: the users who changed their mind this turn (None: nobody, see :meth:`change_mind`).
            active: ``(n,)`` the call had not ended yet.
            draws: ``(n, 4)`` the turn's uniforms: the intent, A and B channels' draws, volunteering.

        Returns:
            The reply; ``user`` is updated (what it has told, its patience, its last acts).
        """
        rows, k, cell = desk.rows, desk.slot, desk.cell
        told, required = user.told, user.goal_required
        relevant = required.take(cell)
        ask = desk.ask
        answer = desk.request & relevant
        confirm = desk.confirm & relevant
        # Which kinds of answer happen this turn, asked once each (a count costs a fraction of a ufunc):
        # the flags of a kind nobody gives are all False, so the parts about it are skipped.
        asking = bool(count_nonzero(ask))
        answering = bool(count_nonzero(answer))
        affirming = False
        confirming = bool(count_nonzero(confirm))
        if confirming:
            believed = desk.values.take(cell)
            right = believed == user.goal_values.take(cell)
            affirm, negate = confirm & right, confirm > right  # (a > b: a and not b, on bools)
            affirming = bool(count_nonzero(affirm))
        else:  # nobody affirms or denies: both are the all-False ``confirm`` (read only)
            affirm = negate = confirm
        # Channel A: the slot the desk asked about (or the first wrong one after a failed execution).
        execute = desk.execute
        executing = bool(count_nonzero(execute))
        if executing:
            intent_ok = desk.intent_heard & (desk.intent == user.goal_intent)
            bad = required & ~(desk.filled & (desk.values == user.goal_values))
            first_bad = bad.argmax(axis=1)  # argmax and a lookup: cheaper than any() on bool rows
            thank = execute & intent_ok & ~bad[rows, first_bad]
            complain = execute > thank
            a_slot = np.where(complain, first_bad, k)
            a_valid = answer | confirm | (complain & intent_ok)
            inform_intent = ask | (complain > intent_ok)
            informing = bool(count_nonzero(inform_intent))
        else:  # nobody thanks or complains: both are the all-False ``execute`` (read only)
            thank = complain = execute
            a_slot, inform_intent, informing = k, ask, asking
            a_valid = answer | confirm if answering and confirming else confirm if confirming else answer
        irrelevant = desk.asks_slot > relevant
        # A repeat: the intent asked again, or a slot answered again (or affirmed again).
        if answering:
            repeat = answer & told.take(cell)
            if asking:
                repeat = repeat | (ask & user.intent_told)
        else:
            repeat = ask & user.intent_told if asking else answer  # (all False: read only)
        # The untold intents and slots just asked about (one more may be volunteered with them, below).
        if asking or answering:
            fresh = (ask | answer if asking and answering else ask if asking else answer) ^ repeat
        else:
            fresh = answer  # all False (read only)
        if affirming:
            repeat = repeat | (affirm & user.affirmed.take(cell))
        wasted = repeat | irrelevant
        if executing:
            wasted = wasted | complain
        if count_nonzero(wasted):
            useless = user.useless + wasted
            user.useless[...] = useless  # in place with [...] = (cheaper than out= on a small batch)
            hangup = desk.staying & (useless >= self._patience)
            if executing:
                hangup = hangup > thank
        else:  # no useless turn: nobody reaches its patience now (a live call below it stays below it)
            hangup = wasted  # all False (read only)

        # What the user has now told: channel A, its affirmations, its intent.
        saying = bool(count_nonzero(a_valid))  # whether any user says something (so far: on channel A)
        if saying:
            told[rows[a_valid], a_slot[a_valid]] = True
        if affirming:
            user.affirmed[rows[affirm], k[affirm]] = True
        if informing:
            user.intent_told[...] = user.intent_told | inform_intent
        # Channel B: the changed value, or one more slot the user volunteers from its agenda.
        change_slot = user.change_slot
        changing = change is not None
        if changing or ((asking or answering) and count_nonzero(fresh)):
            untold = required > told
            first_untold = untold.argmax(axis=1)
            volunteer = fresh & (draws[:, 3] < self._p_volunteer) & untold[rows, first_untold]
            if change is not None:
                volunteer = volunteer > change
                b_slot = np.where(change, change_slot, first_untold)
                b_valid = volunteer | (change > (a_valid & (a_slot == change_slot)))
            else:
                b_slot, b_valid = first_untold, volunteer
            if count_nonzero(b_valid):
                told[rows[b_valid], b_slot[b_valid]] = True
                saying = True
        else:  # nothing to volunteer: channel B is empty (``fresh`` is all False, read only)
            volunteer = b_valid = fresh
            b_slot = k

        if saying or informing:
            said_i, said_a, said_b = rows[inform_intent], rows[a_valid], rows[b_valid]
            draws_by_use = draws.T  # a row per use: one-axis gathers
            confirmed = desk.values.take(cell[said_a])  # the believed values said back to the user
            if confirming:
                denied = np.where(negate[said_a], confirmed, -1)
                if len(said_b):
                    denied = np.concatenate((denied, no_denials(len(said_b))))
            else:  # no confirmation, so no "no" this turn
                denied = no_denials(len(said_a) + len(said_b))
            said = Said(said_i, said_a, a_slot[said_a], said_b, b_slot[said_b], affirm[said_a], confirmed, denied)
            heard_draws = (draws_by_use[0][said_i], draws_by_use[1][said_a], draws_by_use[2][said_b])
            informed = inform_intent | (a_valid > affirm) | volunteer
        else:  # nobody says anything (many turns of a small batch): the shared empty records, read only
            said, heard_draws = NOTHING_SAID, NO_DRAWS
            informed = a_valid  # all False (read only)
        bye = active > desk.staying  # not over, and ending or not live (the task is done)
        # The user's acts, one after the other (see USER_ACTS), written into its state in one call.
        # All False for calls already over: every act above needs a live call.
        never = self._never(len(active))  # no greeting after the opening
        np.concatenate(
            (
                never,
                informed,
                repeat,
                irrelevant,
                affirm,
                negate,
                never if change is None else change,
                complain,
                thank,
                hangup,
                bye,
            ),
            out=user.act_cells,
        )
        # Positionally, in the order of Reply's fields (keywords cost more).
        return Reply(user.acts, said, heard_draws, irrelevant, thank, complain, hangup, bye, executing)
