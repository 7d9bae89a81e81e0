"""Dialogue: a customer-service desk talking to an agenda-based user simulator through a noisy channel."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.core import CoreEnv, CoreVectorEnv, TaskCore, hash_keys, random_integers
from nlp_envs.data.ontology import Ontology, load_ontology
from nlp_envs.policies import random_policy

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
# The user acts said with a template of their own (in this order), before any informed values.
_PHRASED_ACTS = tuple(
    (act, USER_ACTS[act]) for act in (GREET, REPEAT, IRRELEVANT, AFFIRM, NEGATE, COMPLAIN, THANK, HANGUP, BYE)
)

_NEVER = np.iinfo(np.int64).max // 2


def _uniforms(keys: np.ndarray, stream: int, counter: np.ndarray | int, blocks: int) -> np.ndarray:
    """``(len(keys), 4 * blocks)`` uniforms in ``(0, 1)`` (16-bit resolution) from counter-based hashes.

    One 64-bit hash (``core.hash_keys``) of ``(key, (counter * 64 + block) * 16 + stream)`` gives
    four 16-bit fields, so a turn's four draws cost one hash per slot. Streams (< 16) keep the
    episode's draws and each turn's draws independent; ``blocks`` must be at most 64.
    """
    m = len(keys)
    base = np.asarray(counter, dtype=np.uint64) * np.uint64(64 * 16) + np.uint64(stream)
    offsets = np.arange(blocks, dtype=np.uint64) * np.uint64(16)
    counters = np.reshape(base, (-1, 1)) + offsets  # (m or 1, blocks)
    hashed = hash_keys(np.repeat(keys, blocks).reshape(m, blocks), counters)
    # The four 16-bit fields of each hash, low field first on every platform.
    fields = hashed.astype("<u8", copy=False).view("<u2").reshape(m, 4 * blocks)
    return (fields + 0.5) * 2.0**-16


def _likelihood(value: np.ndarray, conf: np.ndarray, size: np.ndarray | int, width: int) -> np.ndarray:
    """``(h, width)``: P(reading | true value) up to a constant, for readings ``value`` of confidence ``conf``.

    A calibrated confidence ``c`` is the posterior of the reading under a uniform prior, so the
    likelihood is ``c`` at the heard value and ``(1 - c) / (size - 1)`` elsewhere (floored at 1e-12
    so that no value is ruled out for good by a reading).
    """
    other = (1.0 - conf) / (np.asarray(size) - 1)
    likelihood = np.where(np.arange(width) == value[:, None], conf[:, None], other[:, None])
    return np.maximum(likelihood, 1e-12, out=likelihood)


_TURN_STREAM, _GOAL_STREAM = 0, 1


class DialogueCore(TaskCore):
    """Batched Dialogue dynamics; see :class:`DialogueEnv` for the documentation."""

    env_id = "nlp_envs/Dialogue-v0"
    metric_names = ("success", "turns", "handoff")

    def __init__(
        self,
        num_envs: int,
        *,
        ontology: str | Path | Ontology = "bank",
        intents: Sequence[str] | None = None,
        error_rate: float = 0.15,
        max_turns: int = 20,
        patience: int = 4,
        p_open_intent: float = 0.6,
        p_volunteer: float = 0.3,
        p_change: float = 0.1,
        turn_cost: float = 1.0,
        success_reward: float = 20.0,
        wrong_penalty: float = 10.0,
        lost_penalty: float = 10.0,
        handoff_cost: float = 5.0,
    ) -> None:
        super().__init__(num_envs)
        for name, value in (
            ("error_rate", error_rate),
            ("p_open_intent", p_open_intent),
            ("p_volunteer", p_volunteer),
            ("p_change", p_change),
        ):
            if not isinstance(value, (int, float, np.floating, np.integer)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.env_id}: {name} must be a probability in [0, 1], got {value!r}.")
        if error_rate >= 0.5:
            raise ValueError(
                f"{self.env_id}: error_rate={error_rate!r} must be below 0.5 (above it the channel lies more "
                "often than not); the registered presets use 0.0, 0.15 and 0.3."
            )
        for name, value in (("max_turns", max_turns), ("patience", patience)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{self.env_id}: {name} must be an integer >= 1, got {value!r}.")
        for name, value in (
            ("turn_cost", turn_cost),
            ("success_reward", success_reward),
            ("wrong_penalty", wrong_penalty),
            ("lost_penalty", lost_penalty),
            ("handoff_cost", handoff_cost),
        ):
            if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
                raise ValueError(f"{self.env_id}: {name} must be a finite number, got {value!r}.")
        onto = ontology if isinstance(ontology, Ontology) else load_ontology(ontology)
        if intents is not None:
            if isinstance(intents, str):
                raise ValueError(f"{self.env_id}: intents must be a list of intent names, got the string {intents!r}.")
            onto = onto.restrict(tuple(intents))
        self.ontology = onto
        self.error_rate, self.max_turns, self.patience = float(error_rate), int(max_turns), int(patience)
        self.p_open_intent, self.p_volunteer, self.p_change = float(p_open_intent), float(p_volunteer), float(p_change)
        self.turn_cost, self.success_reward = float(turn_cost), float(success_reward)
        self.wrong_penalty, self.lost_penalty, self.handoff_cost = (
            float(wrong_penalty),
            float(lost_penalty),
            float(handoff_cost),
        )
        self.max_steps = self.max_turns

        n_intents, n_slots = onto.n_intents, onto.n_slots
        width = int(onto.n_values.max())
        self.n_intents, self.n_slots, self.width = n_intents, n_slots, width
        self.required = onto.required
        self._intents_needing = np.ascontiguousarray(onto.required.T)  # (K, I): the intents that need slot k
        self.n_values = onto.n_values
        self.value_mask = np.arange(width)[None, :] < onto.n_values[:, None]  # (K, V)
        self.uniform_rows = self.value_mask / onto.n_values[:, None]
        counts = np.array([len(slots) for slots in onto.intent_slots], dtype=np.int64)
        self.slot_counts = counts
        self.agenda = np.zeros((n_intents, int(counts.max())), dtype=np.int64)
        for intent, slots in enumerate(onto.intent_slots):
            self.agenda[intent, : len(slots)] = slots
        # Actions: ask intent, request slot k, confirm slot k, execute, hand off, close.
        self.ASK, self.EXECUTE = 0, 2 * n_slots + 1
        self.HANDOFF, self.CLOSE, self.OPEN = 2 * n_slots + 2, 2 * n_slots + 3, 2 * n_slots + 4
        self.n_actions = 2 * n_slots + 4
        self.single_action_space = spaces.Discrete(self.n_actions)
        # Observation layout (all in [0, 1]).
        sizes = {
            "intent": n_intents,
            "intent_heard": 1,
            "filled": n_slots,
            "confidence": n_slots,
            "needed": n_slots,
            "user_act": len(USER_ACTS),
            "turn": 1,
            "annoyance": 1,
        }
        self.layout: dict[str, slice] = {}
        start = 0
        for name, size in sizes.items():
            self.layout[name] = slice(start, start + size)
            start += size
        self.obs_size = start
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=(start,), dtype=np.float32)
        self.afterstate_space = spaces.Box(0.0, 1.0, shape=(start + self.n_actions,), dtype=np.float32)

        self._goal_blocks = -(-(n_slots + 1) // 4)
        self._allocate(self.num_envs)

    def _allocate(self, n: int) -> None:
        """Allocate the state of ``n`` episode slots.

        Flags, counters and per-slot flags live in three grouped arrays (the attributes are row
        views of them), so that starting episodes resets them in three calls.
        """
        n_intents, n_slots, width = self.n_intents, self.n_slots, self.width
        self._rows = np.arange(n)
        self._intent_sizes = np.full(n, n_intents)
        # The user: goal, what it has told, how annoyed it is; the episode's progress.
        self.keys = np.zeros(n, dtype=np.uint64)
        self.start_intent = np.zeros(n, dtype=np.int64)
        self.start_values = np.zeros((n, n_slots), dtype=np.int64)
        self.goal_intent = np.zeros(n, dtype=np.int64)
        self.goal_values = np.zeros((n, n_slots), dtype=np.int64)
        self.goal_required = np.zeros((n, n_slots), dtype=bool)  # the slots the goal's intent needs
        self.change_turn = np.full(n, _NEVER, dtype=np.int64)
        self.change_slot = np.zeros(n, dtype=np.int64)
        self.change_value = np.zeros(n, dtype=np.int64)
        self._flags = np.zeros((5, n), dtype=bool)
        self.intent_told, self.done, self.over, self.handed_off, self.intent_heard = self._flags
        self._counters = np.zeros((3, n), dtype=np.int64)
        self.useless, self.turn, self.intent_value = self._counters
        self._slot_flags = np.zeros((3, n, n_slots), dtype=bool)
        self.told, self.affirmed, self.heard = self._slot_flags
        # The agent's belief (what its noisy understanding has made of the user so far).
        self.intent_belief = np.full((n, n_intents), 1.0 / n_intents)
        self.slot_belief = np.broadcast_to(self.uniform_rows, (n, n_slots, width)).copy()
        self.slot_value = np.zeros((n, n_slots), dtype=np.int64)
        self.slot_conf = np.zeros((n, n_slots))
        self.needed = np.zeros((n, n_slots), dtype=bool)  # the slots the believed intent needs (once heard)
        self.user_acts = np.zeros((n, len(USER_ACTS)), dtype=bool)
        self.actions = np.zeros((n, self.max_turns + 1), dtype=np.int16)
        self.last: dict[str, Any] = {}  # the last turn (or opening) of every slot, for the text
        # A one-slot core keeps its episode's turns for text(): (act, believed intent and values
        # before the act, the turn's record); a batch replays instead (no per-slot work per step).
        self._history: list[tuple[int, int, np.ndarray, dict[str, Any]]] | None = [] if n == 1 else None
        self._history_lines: list[list[str]] = []  # the text of each kept turn, formatted once
        self._obs: np.ndarray | None = None

    # ----------------------------------------------------------------------------------- episodes
    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw each slot's user (goal, opening, changed mind) from its episode key; the user speaks first."""
        draws = _uniforms(keys, _GOAL_STREAM, 0, self._goal_blocks + 2)
        intents, values = self._goals(draws)
        self.begin_with_goals(slots, keys, intents, values, draws[:, 4 * self._goal_blocks :])

    def sample_goals(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The goals drawn from episode keys: intents ``(m,)`` and values ``(m, n_slots)`` (all slots)."""
        return self._goals(_uniforms(keys, _GOAL_STREAM, 0, self._goal_blocks))

    def _goals(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        intents = np.minimum((draws[:, 0] * self.n_intents).astype(np.int64), self.n_intents - 1)
        values = (draws[:, 1 : self.n_slots + 1] * self.n_values).astype(np.int64)
        return intents, np.minimum(values, self.n_values - 1, out=values)

    def begin_with_goals(
        self,
        slots: np.ndarray,
        keys: np.ndarray,
        intents: np.ndarray,
        values: np.ndarray,
        draws: np.ndarray | None = None,
    ) -> None:
        """Start episodes in ``slots`` with given goals (for tests and curricula); the rest comes from ``keys``.

        Args:
            slots: episode slots, shape ``(m,)``.
            keys: uint64 episode keys (the user's opening, noise and changed mind), shape ``(m,)``.
            intents: goal intent ids, shape ``(m,)``.
            values: goal value ids for every slot, shape ``(m, n_slots)`` (only the intent's slots matter).
            draws: the user's ``(m, 8)`` uniforms if already drawn from ``keys`` (by :meth:`begin`).
        """
        slots = np.asarray(slots, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.uint64)
        intents = np.asarray(intents, dtype=np.int64)
        m = len(slots)
        values = np.asarray(values, dtype=np.int64).reshape(m, self.n_slots)
        local = self._rows[:m]
        self._obs = None
        self.keys[slots] = keys
        self.start_intent[slots] = self.goal_intent[slots] = intents
        self.goal_required[slots] = self.required[intents]
        self.needed[slots] = False
        self.start_values[slots] = self.goal_values[slots] = values
        # u: change coin, change turn, change slot, change value, opening coin, volunteer coin,
        # then the draws of the opening's intent reading and volunteered slot reading.
        if draws is None:
            draws = _uniforms(keys, _GOAL_STREAM, 0, self._goal_blocks + 2)[:, 4 * self._goal_blocks :]
        u = draws
        counts = self.slot_counts[intents]
        changing = self.agenda[intents, np.minimum((u[:, 2] * counts).astype(np.int64), counts - 1)]
        size = self.n_values[changing]
        shift = 1 + np.minimum((u[:, 3] * (size - 1)).astype(np.int64), size - 2)
        self.change_turn[slots] = np.where(u[:, 0] < self.p_change, 1 + (u[:, 1] * 4).astype(np.int64), _NEVER)
        self.change_slot[slots] = changing
        self.change_value[slots] = (values[local, changing] + shift) % size
        self._flags[:, slots] = False
        self._counters[:, slots] = 0
        self._slot_flags[:, slots] = False
        self.slot_value[slots] = 0
        self.slot_conf[slots] = 0.0
        self.intent_belief[slots] = 1.0 / self.n_intents
        self.slot_belief[slots] = self.uniform_rows
        # The opening: the intent (and maybe the first slot of the agenda), or a greeting.
        open_intent = u[:, 4] < self.p_open_intent
        volunteer = open_intent & (u[:, 5] < self.p_volunteer)
        first = self.agenda[intents, 0]
        said_i, said_b, slots_b = slots[open_intent], slots[volunteer], first[volunteer]
        nothing = slots[:0]
        reads = self._hear(
            said_i,
            nothing,
            said_b,
            nothing,
            slots_b,
            u[open_intent, 6],
            u[:0, 0],
            u[volunteer, 7],
            nothing.astype(bool),
            nothing,
        )
        _, heard_as, conf = reads
        n_i = len(said_i)
        self.intent_told[said_i] = True
        self.told[said_b, slots_b] = True
        self._update_intents(said_i, heard_as[:n_i], conf[:n_i])
        self._update_slots(said_b, slots_b, heard_as[n_i:], conf[n_i:], None)
        acts = np.zeros((m, len(USER_ACTS)), dtype=bool)
        acts[:, GREET] = ~open_intent
        acts[:, INFORM] = open_intent
        self.user_acts[slots] = acts
        self.last = {
            "act": np.full(m, self.OPEN),
            "user_acts": acts,
            "said": (said_i, nothing, said_b, nothing, slots_b, *reads),
        }
        if self._history is not None:
            self._history = [(self.OPEN, 0, self.slot_value[0].copy(), self.last)]
            self._history_lines = []

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One agent act per slot, the user's answer through the noisy channel, the belief update."""
        act = actions
        n_slots, rows, turn = self.n_slots, self._rows, self.turn
        self._obs = None
        u = _uniforms(self.keys, _TURN_STREAM, turn, 1)  # the intent, A and B channels' draws; volunteering
        if self._history is not None:
            before = (int(self.intent_value[0]), self.slot_value[0].copy())  # what the agent's text says
        over, done = self.over, self.done
        gv, told, heard, slot_value = self.goal_values, self.told, self.heard, self.slot_value
        live = ~(over | done)
        is_execute = act == self.EXECUTE
        is_handoff = act == self.HANDOFF
        ending = is_handoff | (act == self.CLOSE)
        is_confirm = (act > n_slots) & (act <= 2 * n_slots)
        # The slot a request or confirm is about (any valid index for the other acts).
        k = np.where(is_confirm, act - (n_slots + 1), act - 1)
        np.remainder(k, n_slots, out=k)

        # A changed mind: the user alters one told value (never on a turn that ends or executes).
        change_slot = self.change_slot
        change = live & (turn >= self.change_turn) & ~(ending | is_execute) & told[rows, change_slot]
        if change.any():
            hit, slot = rows[change], change_slot[change]
            gv[hit, slot] = self.change_value[change]
            told[hit, slot] = self.affirmed[hit, slot] = heard[hit, slot] = False
            slot_value[hit, slot] = 0
            self.slot_conf[hit, slot] = 0.0
            self.slot_belief[hit, slot] = self.uniform_rows[slot]
            self.change_turn[hit] = _NEVER

        required = self.goal_required
        relevant = required[rows, k]
        believed = slot_value[rows, k]
        right = believed == gv[rows, k]
        k_told = told[rows, k]
        intent_ok = self.intent_heard & (self.intent_value == self.goal_intent)
        bad = required & ~(heard & (slot_value == gv))
        first_bad = bad.argmax(axis=1)  # argmax and a lookup: cheaper than any() on bool rows
        execute = live & is_execute
        thank = execute & intent_ok & ~bad[rows, first_bad]
        complain = execute & ~thank
        ask = live & (act == self.ASK)
        request = live & (act >= 1) & (act <= n_slots)
        confirm = live & is_confirm
        answer = request & relevant
        affirm = confirm & relevant & right
        negate = confirm & relevant & ~right
        irrelevant = (request | confirm) & ~relevant
        intent_told = self.intent_told
        repeat = (ask & intent_told) | (answer & k_told) | (affirm & self.affirmed[rows, k])
        fresh = (ask & ~intent_told) | (answer & ~k_told)
        inform_intent = ask | (complain & ~intent_ok)
        useless = self.useless + (repeat | irrelevant | complain)
        hangup = live & ~ending & ~thank & (useless >= self.patience)

        # The user's act itself is heard without noise: an answer about slot k (or "that doesn't
        # apply") tells which intents are still possible. Exact Bayes: the others get probability 0.
        asked = rows[request | confirm]
        possible = self._intents_needing[k[asked]] != irrelevant[asked, None]
        # Channel A: the slot the agent asked about (or the first wrong one after a failed execution).
        a_valid = answer | affirm | negate | (complain & intent_ok)
        a_slot = np.where(complain, first_bad, k)
        told[rows[a_valid], a_slot[a_valid]] = True
        self.affirmed[rows[affirm], k[affirm]] = True
        intent_told |= inform_intent
        # Channel B: the changed value, or one more slot the user volunteers from its agenda.
        untold = required & ~told
        first_untold = untold.argmax(axis=1)
        volunteer = fresh & (u[:, 3] < self.p_volunteer) & untold[rows, first_untold] & ~change
        b_slot = np.where(change, change_slot, first_untold)
        b_valid = volunteer | (change & ~(a_valid & (a_slot == change_slot)))
        told[rows[b_valid], b_slot[b_valid]] = True

        # The noisy channel, on the said items only (intent readings, then A, then B), and the belief update.
        said_i, said_a, said_b = rows[inform_intent], rows[a_valid], rows[b_valid]
        slots_a, slots_b = a_slot[said_a], b_slot[said_b]
        reads = self._hear(
            said_i,
            said_a,
            said_b,
            slots_a,
            slots_b,
            u[said_i, 0],
            u[said_a, 1],
            u[said_b, 2],
            affirm[said_a],
            believed[said_a],
        )
        truth, heard_as, conf = reads
        n_i = len(said_i)
        self.intent_heard[said_i] = True
        # Most slots get intent evidence each turn, so weigh the whole batch (1 where nothing was learnt).
        likelihood = np.ones((len(act), self.n_intents))
        likelihood[said_i] = _likelihood(heard_as[:n_i], conf[:n_i], self.n_intents, self.n_intents)
        likelihood[asked] = possible
        belief = self.intent_belief
        belief *= likelihood
        belief /= belief.sum(axis=1, keepdims=True)  # > 0: the true intent is never ruled out
        belief.argmax(axis=1, out=self.intent_value)
        np.logical_and(self.required[self.intent_value], self.intent_heard[:, None], out=self.needed)
        denied = np.full(len(heard_as) - n_i, -1)
        denied[: len(said_a)] = np.where(negate[said_a], believed[said_a], -1)
        self._update_slots(
            np.concatenate([said_a, said_b]), np.concatenate([slots_a, slots_b]), heard_as[n_i:], conf[n_i:], denied
        )

        active = ~over
        bye = active & (ending | done)
        terminated = bye | hangup
        rewards = active * -self.turn_cost + thank * self.success_reward - complain * self.wrong_penalty
        rewards -= (live & is_handoff) * self.handoff_cost + ((live & (act == self.CLOSE)) | hangup) * self.lost_penalty
        self.actions[rows, np.minimum(turn, self.max_turns)] = act  # the last column takes writes past the end
        self.turn += active
        self.handed_off |= live & is_handoff
        self.over |= terminated
        self.done |= thank
        self.useless[:] = useless
        user_acts = np.stack(
            [
                np.zeros_like(act, dtype=bool),
                inform_intent | (a_valid & ~affirm) | volunteer,
                repeat,
                irrelevant,
                affirm,
                negate,
                change,
                complain,
                thank,
                hangup,
                bye,
            ],
            axis=1,
        )
        self.user_acts[:] = user_acts  # all False for calls already over: every act above needs ``live``
        self.last = {"act": act, "user_acts": user_acts, "said": (said_i, said_a, said_b, slots_a, slots_b, *reads)}
        if self._history is not None and active[0]:
            self._history.append((int(act[0]), *before, self.last))
        return rewards, terminated

    def _hear(
        self,
        said_i: np.ndarray,
        said_a: np.ndarray,
        said_b: np.ndarray,
        slots_a: np.ndarray,
        slots_b: np.ndarray,
        draw_i: np.ndarray,
        draw_a: np.ndarray,
        draw_b: np.ndarray,
        sure_a: np.ndarray,
        value_a: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The truth, the readings and their confidences of what the users said, concatenated.

        Intent readings of episode slots ``said_i`` first, then slot values on channel A (``said_a``,
        slots ``slots_a``; where ``sure_a`` the reading is ``value_a`` with confidence 1: an
        affirmation), then channel B. ``draw_*`` are each reading's uniform draw.
        """
        gv = self.goal_values
        truth = np.concatenate([self.goal_intent[said_i], gv[said_a, slots_a], gv[said_b, slots_b]])
        size = np.concatenate([self._intent_sizes[: len(said_i)], self.n_values[slots_a], self.n_values[slots_b]])
        heard, conf = self._noisy(truth, size, np.concatenate([draw_i, draw_a, draw_b]))
        if sure_a.any():
            start = len(said_i)
            heard[start : start + len(said_a)][sure_a] = value_a[sure_a]
            conf[start : start + len(said_a)][sure_a] = 1.0
        return truth, heard, conf

    def _noisy(self, true: np.ndarray, size: np.ndarray, draw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the understanding hears of ``true`` values (of sets of ``size``), and its calibrated confidence.

        One uniform ``draw`` per reading decides all: below ``error_rate`` the value becomes another
        one (uniformly), and what is left of the draw (uniform again) gives the score: ``sqrt(v)``
        for a right reading, ``1 - sqrt(v)`` for a wrong one. The confidence is the posterior that
        the reading is right given the score, so it is calibrated (and 1 without noise).
        """
        e = self.error_rate
        if e == 0.0:
            return true.copy(), np.ones(true.shape)
        error = draw < e
        scaled = draw * ((size - 1) * (1.0 / e))  # for errors: uniform in [0, size - 1)
        pick = scaled.astype(np.int64)
        wrapped = true + 1 + pick
        wrapped -= size * (wrapped >= size)
        heard = np.where(error, wrapped, true)
        score = np.sqrt(np.where(error, scaled - pick, (draw - e) * (1.0 / (1.0 - e))))
        np.subtract(1.0, score, out=score, where=error)
        conf = score * (1.0 - e) / (score * (1.0 - 2.0 * e) + e)
        return heard, np.clip(conf, 0.02, 0.98, out=conf)

    def _update_intents(self, hit: np.ndarray, value: np.ndarray, conf: np.ndarray) -> None:
        """Bayes update of the intent belief of slots ``hit`` with readings ``value`` of confidence ``conf``."""
        if hit.size:
            self.intent_heard[hit] = True
            self._weigh_intents(hit, _likelihood(value, conf, self.n_intents, self.n_intents))

    def _weigh_intents(self, hit: np.ndarray, likelihood: np.ndarray) -> None:
        """Multiply the intent belief of slots ``hit`` by ``likelihood`` ``(h, n_intents)`` and renormalise."""
        if not hit.size:
            return
        belief = self.intent_belief[hit] * likelihood
        belief /= np.maximum(belief.sum(axis=1, keepdims=True), 1e-300)
        self.intent_belief[hit] = belief
        believed = belief.argmax(axis=1)
        self.intent_value[hit] = believed
        self.needed[hit] = self.required[believed] & self.intent_heard[hit, None]

    def _update_slots(
        self, hit: np.ndarray, slot: np.ndarray, value: np.ndarray, conf: np.ndarray, exclude: np.ndarray | None
    ) -> None:
        """Bayes update of slot ``slot`` of episode slots ``hit`` with readings ``value`` (``conf``).

        ``exclude`` (-1 for none) is a value the user has just denied: its probability becomes 0.
        """
        if not hit.size:
            return
        belief = self.slot_belief[hit, slot]
        if exclude is not None:
            denied = exclude >= 0
            belief[denied, exclude[denied]] = 0.0
        belief *= _likelihood(value, conf, self.n_values[slot], self.width)  # values outside the set stay 0
        belief /= np.maximum(belief.sum(axis=1, keepdims=True), 1e-300)
        self.slot_belief[hit, slot] = belief
        self.slot_value[hit, slot] = belief.argmax(axis=1)
        self.slot_conf[hit, slot] = belief.max(axis=1)
        self.heard[hit, slot] = True

    # ----------------------------------------------------------------------------------- views
    def observe(self) -> np.ndarray:
        """The belief state: see the observation table of :class:`DialogueEnv` (a copy the caller owns)."""
        return self._belief().copy()

    def _belief(self) -> np.ndarray:
        """The observations, cached until the state changes; never handed out, as a caller may write into them."""
        if self._obs is None:
            layout, obs = self.layout, np.empty((self.num_envs, self.obs_size), dtype=np.float32)
            obs[:, layout["intent"]] = self.intent_belief
            obs[:, layout["intent_heard"].start] = self.intent_heard
            obs[:, layout["filled"]] = self.heard
            obs[:, layout["confidence"]] = self.slot_conf
            obs[:, layout["needed"]] = self.needed
            obs[:, layout["user_act"]] = self.user_acts
            obs[:, layout["turn"].start] = np.minimum(self.turn, self.max_turns) * (1.0 / self.max_turns)
            obs[:, layout["annoyance"].start] = np.minimum(self.useless, self.patience) * (1.0 / self.patience)
            self._obs = obs
        return self._obs

    def masks_from_observations(self, observations: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` bool: the acts that make sense in each belief state (a function of it only).

        After the user thanks: only close. Otherwise: ask the intent and hand off always; request a
        slot the believed intent needs (any slot while the intent is unknown) unless it is certain;
        confirm a filled, uncertain slot the intent needs; execute once the intent and all its
        needed slots are filled; never close before the task is done.
        """
        layout = self.layout
        observations = np.asarray(observations)
        return self._masks(
            observations[:, layout["intent_heard"].start] > 0.5,
            observations[:, layout["filled"]] > 0.5,
            observations[:, layout["needed"]] > 0.5,
            observations[:, layout["confidence"]],
            observations[:, layout["user_act"].start + THANK] <= 0.5,
        )

    def _masks(
        self, intent_known: np.ndarray, filled: np.ndarray, needed: np.ndarray, conf: np.ndarray, waiting: np.ndarray
    ) -> np.ndarray:
        """The mask rule of :meth:`masks_from_observations`, from the belief's parts (``waiting``: no thanks yet)."""
        needed = needed | ~intent_known[:, None]
        open_slots = needed & (conf < 0.999)
        missing = needed & ~filled
        any_missing = missing[np.arange(len(missing)), missing.argmax(axis=1)]  # cheaper than any(axis=1)
        masks = np.empty((len(filled), self.n_actions), dtype=bool)
        masks[:, self.ASK] = waiting
        masks[:, 1 : self.n_slots + 1] = open_slots & waiting[:, None]
        masks[:, self.n_slots + 1 : 2 * self.n_slots + 1] = open_slots & filled & waiting[:, None]
        masks[:, self.EXECUTE] = intent_known & ~any_missing & waiting
        masks[:, self.HANDOFF] = waiting
        masks[:, self.CLOSE] = ~waiting
        return masks

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)``: the acts that make sense now (see :meth:`masks_from_observations`).

        The same rule on the same belief, read from the state rather than parsed back from the
        observation (the confidences are the observation's float32 values, so both agree exactly).
        """
        conf = self._belief()[:, self.layout["confidence"]]
        return self._masks(self.intent_heard, self.heard, self.needed, conf, ~self.user_acts[:, THANK])

    def step_info(self) -> dict[str, np.ndarray]:
        """``action_mask`` for every slot."""
        return {"action_mask": self.action_masks()}

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """``success`` (the right task was executed), ``turns`` (agent acts) and ``handoff`` (0/1)."""
        return {
            "success": self.done[slots].astype(np.float64),
            "turns": self.turn[slots].astype(np.float64),
            "handoff": self.handed_off[slots].astype(np.float64),
        }

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The belief state with the act appended one-hot (the user's answer is not known yet)."""
        onehot = np.zeros((len(actions), self.n_actions), dtype=np.float32)
        onehot[np.arange(len(actions)), actions] = 1.0
        return np.concatenate([np.asarray(observations, dtype=np.float32), onehot], axis=1)

    # ----------------------------------------------------------------------------------- text
    @cached_property
    def _replayer(self) -> DialogueCore:
        """A one-slot copy of this core (sharing the ontology tables) that replays episodes for text."""
        replay = DialogueCore.__new__(DialogueCore)
        replay.__dict__.update({key: value for key, value in self.__dict__.items() if key != "_replayer"})
        replay.num_envs = 1
        replay._allocate(1)
        return replay

    def text(self, slot: int) -> str:
        """The dialogue so far: each agent act and user answer, with what the understanding heard.

        A one-slot core (the single env) keeps its episode's turns as it plays them; a batch
        replays the slot's episode from its key and logged acts in a one-slot copy (text stays
        out of the batched hot path).
        """
        key = self.keys[slot : slot + 1]
        turns = int(min(self.turn[slot], self.max_turns))
        if self._history is not None and len(self._history) == turns + 1:
            # The single env asks for the text every step: format each new turn once.
            for turn in range(len(self._history_lines), turns + 1):
                self._history_lines.append(self._turn_lines(self._history[turn], key, turn))
            per_turn = self._history_lines
        else:
            per_turn = [self._turn_lines(record, key, turn) for turn, record in enumerate(self._replay(slot, turns))]
        opening = f"Agent: {_pick(self.ontology.agent['open'], key, 0, 0)}"
        return "\n".join([opening, *(line for lines in per_turn for line in lines)])

    def _turn_lines(self, record: tuple[int, int, np.ndarray, dict[str, Any]], key: np.ndarray, turn: int) -> list[str]:
        """The agent's act of ``turn`` (none for the opening) and the user's answer, as said."""
        action, intent, values, last = record
        agent = [f"Agent: {self._agent_text(action, key, turn, intent, values)}"] if turn else []
        return [*agent, self._user_line(last, key, turn)]

    def _replay(self, slot: int, turns: int) -> list[tuple[int, int, np.ndarray, dict[str, Any]]]:
        """Re-simulate the first ``turns`` turns of ``slot``'s episode; one record per turn (opening first)."""
        replay = self._replayer
        replay.begin_with_goals(
            np.zeros(1, np.int64),
            self.keys[slot : slot + 1],
            self.start_intent[slot : slot + 1],
            self.start_values[slot : slot + 1],
        )
        records = []
        for turn in range(turns + 1):
            if turn:
                replay.advance(self.actions[slot, turn - 1 : turn].astype(np.int64))
            records.append(cast(list, replay._history)[-1])
        return records

    def _agent_text(self, action: int, key: np.ndarray, turn: int, intent: int, values: np.ndarray) -> str:
        """The agent's act as said, with its belief just before it (``intent``, slot ``values``)."""
        onto, agent = self.ontology, self.ontology.agent
        if action == self.ASK:
            return _pick(agent["ask_intent"], key, turn, 0)
        if action <= self.n_slots:
            return _pick(onto.slot_requests[action - 1], key, turn, 0)
        if action <= 2 * self.n_slots:
            slot = action - self.n_slots - 1
            value = onto.slot_values[slot][int(values[slot])]
            return _pick(agent["confirm"], key, turn, 0).format(slot=onto.slot_labels[slot], value=value)
        if action == self.EXECUTE:
            fields = {onto.slot_names[k]: onto.slot_values[k][int(values[k])] for k in range(self.n_slots)}
            done = _pick(onto.intent_executes[intent], key, turn, 0).format(**fields)
            return f"[executes: {onto.intent_labels[intent]}] {done}"
        return _pick(agent["handoff" if action == self.HANDOFF else "close"], key, turn, 0)

    def _user_line(self, last: dict[str, Any], key: np.ndarray, turn: int) -> str:
        """A one-slot core's user turn ``last`` as said, then what the understanding heard of it."""
        onto, user, acts = self.ontology, self.ontology.user, last["user_acts"][0]
        said_i, said_a, said_b, slots_a, slots_b, truth, heard_as, conf = last["said"]
        parts, heard = [], []
        for salt, (act, name) in enumerate(_PHRASED_ACTS):
            if acts[act]:
                parts.append(_pick(user[name], key, turn, 1 + salt))
        channels: list[tuple[str, int | None]] = [("intent", None)] * len(said_i)
        channels += [("a", int(k)) for k in slots_a] + [("b", int(k)) for k in slots_b]
        if acts[CHANGE] and not len(said_b):  # the changed slot is the one just answered
            parts.append(_pick(user["change"], key, turn, 20).format(slot=onto.slot_labels[int(slots_a[0])]))
        for index, (channel, slot) in enumerate(channels):
            if slot is None:
                parts.append(_pick(onto.intent_informs[int(truth[index])], key, turn, 10))
                heard.append(f"intent={onto.intent_names[int(heard_as[index])]} ({conf[index]:.2f})")
                continue
            if channel == "b" and acts[CHANGE]:
                parts.append(_pick(user["change"], key, turn, 20).format(slot=onto.slot_labels[slot]))
            if channel == "a" and acts[AFFIRM]:
                continue
            value = onto.slot_values[slot][int(truth[index])]
            parts.append(_pick(onto.slot_informs[slot], key, turn, 30 + (channel == "b")).format(value=value))
            heard.append(f"{onto.slot_names[slot]}={onto.slot_values[slot][int(heard_as[index])]} ({conf[index]:.2f})")
        line = "User: " + " ".join(part[0].upper() + part[1:] for part in parts)
        return line + (f"   [heard: {'; '.join(heard)}]" if heard else "")


def _pick(templates: Sequence[str], key: np.ndarray, turn: int, salt: int) -> str:
    """A template chosen by the episode key (the same dialogue always reads the same)."""
    return templates[int(random_integers(key, len(templates), turn, 7919 + salt)[0])]


# --------------------------------------------------------------------------------------- policies


def rule_policy(observations: np.ndarray, env: CoreVectorEnv, threshold: float = 0.8) -> np.ndarray:
    """A hand-written desk agent that reads only the observation (and the ontology's static structure).

    Close after the user thanks; ask the intent while it is unknown or below ``threshold``; request
    the first missing slot the believed intent needs; confirm the least certain needed slot below
    ``threshold``; else execute. Hands off when one more useless turn would make the user hang up
    and it is not ready to execute.
    """
    core = cast(DialogueCore, env.unwrapped.core)
    obs = np.asarray(observations)
    if obs.ndim != 2:
        obs = core.observe()
    layout = core.layout
    belief = obs[:, layout["intent"]]
    intent = belief.argmax(axis=1)
    intent_sure = (obs[:, layout["intent_heard"].start] > 0.5) & (belief.max(axis=1) >= threshold)
    filled = obs[:, layout["filled"]] > 0.5
    conf = obs[:, layout["confidence"]]
    needed = core.required[intent]
    missing = needed & ~filled
    unsure = needed & filled & (conf < threshold)
    thanked = obs[:, layout["user_act"].start + THANK] > 0.5
    last_chance = obs[:, layout["annoyance"].start] >= (core.patience - 1) / core.patience - 1e-6
    actions = np.full(len(obs), core.EXECUTE, dtype=np.int64)
    actions = np.where(unsure.any(axis=1), core.n_slots + 1 + np.where(unsure, conf, 2.0).argmin(axis=1), actions)
    actions = np.where(missing.any(axis=1), 1 + missing.argmax(axis=1), actions)
    actions = np.where(intent_sure, actions, core.ASK)
    repeat = (actions == core.ASK) & (obs[:, layout["intent_heard"].start] > 0.5)
    actions = np.where(last_chance & repeat, core.HANDOFF, actions)
    return np.where(thanked, core.CLOSE, actions)


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Uses hidden state: it reads the user's goal and what the understanding got right.

    Close once the task is done; ask the intent until it is understood right; confirm the first
    needed slot understood wrong (the user corrects it) or request the first one not yet heard;
    execute when everything is right. Without noise this completes every goal in the fewest
    turns the user allows (one per missing item, fewer when the user volunteers); with noise it is
    the strongest simple policy, not the exact optimum of the POMDP.
    """
    core = cast(DialogueCore, env.unwrapped.core)
    rows = core._rows
    intent_ok = core.intent_heard & (core.intent_value == core.goal_intent)
    required = core.required[core.goal_intent]
    wrong = required & ~(core.heard & (core.slot_value == core.goal_values))
    first = wrong.argmax(axis=1)
    fix = np.where(core.heard[rows, first], core.n_slots + 1 + first, 1 + first)
    actions = np.where(wrong.any(axis=1), fix, core.EXECUTE)
    actions = np.where(intent_ok, actions, core.ASK)
    return np.where(core.done, core.CLOSE, actions)


class DialogueEnv(CoreEnv):
    """Serve a bank customer over the phone: find out what they want, get the details right, do it.

    ## Description

    A task-oriented dialogue as a partially observable MDP. A simulated customer of a fictional
    bank calls with a hidden goal: one of ten intents (report a lost card, check a balance,
    transfer money, dispute a charge, change the address, open or close an account, report fraud,
    raise a card limit, set a travel notice) and a value for each slot the intent needs (card,
    account, amount, recipient, merchant, date, street, city, reason, contact method; 1 to 4 per
    intent, 886 goals in all). The ontology and the utterance templates are the project's own data
    (``nlp_envs/data/ontologies/bank.json``); ``ontology="path.json"`` loads another file.

    The user is an agenda-based simulator: it opens with its intent (probability
    ``p_open_intent``) or a greeting, answers what it is asked, volunteers the next untold slot of
    its agenda (``p_volunteer``), affirms or corrects confirmations, says "that doesn't apply"
    to questions about slots its intent does not need, and with probability ``p_change`` changes
    its mind about one told value during the call. Repeated questions, irrelevant questions and
    wrong executions are useless turns; at the ``patience``-th the user hangs up.

    The agent hears the user through a noisy understanding: every intent or slot value the user
    says is replaced by another with probability ``error_rate`` (the semantic error rate) and comes
    with a calibrated confidence (the posterior that the reading is right). The user's dialogue
    acts themselves (an answer, a yes or no, "that doesn't apply") are heard without noise, so an
    answer about a slot rules out the intents that do not need it, and "that doesn't apply" rules
    out those that do. The agent's belief is the exact Bayes update of all this; executing uses
    the most probable intent and values.

    ## Action Space

    ``Discrete(2 * n_slots + 4)`` (24 for the bank): summary acts.

    | Action               | Act                                                        |
    |----------------------|------------------------------------------------------------|
    | 0                    | ask for the intent                                         |
    | 1 .. n_slots         | request slot ``k = action - 1``                            |
    | n_slots+1 .. 2n_slots| confirm slot ``k = action - n_slots - 1`` (its believed value) |
    | 2 n_slots + 1        | execute the task (believed intent and values)              |
    | 2 n_slots + 2        | hand off to a human agent (ends the call)                  |
    | 2 n_slots + 3        | close the call                                             |

    ``info["action_mask"]`` (and ``env.action_masks()``) marks the acts that make sense in the
    current belief: no confirming an unfilled slot, no requesting a certain one, no executing
    before the intent and its slots are filled, no closing before the user thanked, only closing
    after. Taking a masked act is legal but wasteful; an action outside the space raises
    :class:`~nlp_envs.InvalidActionError`.

    ## Observation Space

    ``Box(0, 1, (n_intents + 3 * n_slots + 14,), float32)`` (54 for the bank), the belief state:

    | Index (bank)   | Observation                                                       |
    |----------------|-------------------------------------------------------------------|
    | 0 .. 9         | belief over the intents (sums to 1; uniform before any evidence)  |
    | 10             | 1 once the intent has been heard                                  |
    | 11 .. 20       | per slot: 1 once a value has been heard (filled)                  |
    | 21 .. 30       | per slot: confidence in the believed value (0 when unfilled)      |
    | 31 .. 40       | per slot: needed by the believed intent (0 while it is unheard)   |
    | 41 .. 51       | the user's last acts, multi-hot (see ``USER_ACTS`` below)         |
    | 52             | turns taken / ``max_turns``                                       |
    | 53             | useless turns / ``patience`` (how annoyed the user sounds)        |

    ``USER_ACTS``: greet, inform, repeat, irrelevant, affirm, negate, change, complain, thank,
    hangup, bye.

    ## Rewards

    ``-turn_cost`` (1) per turn; ``+success_reward`` (20) for executing the right intent with the
    right value of every slot it needs; ``-wrong_penalty`` (10) for a wrong execution (the user
    complains, corrects one thing and the call goes on); ``-lost_penalty`` (10) when the user hangs
    up or the agent closes before the task is done; ``-handoff_cost`` (5) for a hand-off. After the
    task is done, closing (or any act: the user says bye) ends the call at no further cost. All
    five are keyword arguments.

    ## Starting State

    A goal drawn uniformly (intent, then a value per slot) from the episode key; the user's
    opening (intent or greeting, read through the channel) is in the first observation.

    ## Episode End

    1. Termination: the agent hands off or closes; the user hangs up (patience); the agent acts
       again after the user thanked (the user says bye).
    2. Truncation: ``max_turns`` agent acts, no penalty. (The registered ``max_episode_steps`` is
       ``max_turns + 1``, so that Gymnasium's ``TimeLimit`` never cuts before the env does.)

    ## Information

    Every step: ``action_mask`` and ``text``, the dialogue so far, the agent's and the user's
    utterances (each user line followed by what the understanding heard, with confidences;
    in the vector env only at reset and at the end, with ``info_text=True``); at the end the metrics
    ``success`` (1 if the right task was executed), ``turns`` and ``handoff``.

    ## Afterstate

    The observation with the act appended one-hot (the user's answer is random, so nothing more is
    known before it): learners on afterstates degrade to Q-learning here.

    ## Reference policies

    ``random`` (uniform over the allowed acts); ``rule`` (reads only the observation: ask intent, request missing
    slots, confirm uncertain ones, execute, close; hand off before a last useless turn);
    ``oracle`` (uses hidden state: the goal and which readings are right; fewest turns at 0% noise).

    ## Arguments

    ``ontology="bank"`` (or a path), ``intents=None`` (a subset of intent names), ``error_rate=0.15``,
    ``max_turns=20``, ``patience=4``, ``p_open_intent=0.6``, ``p_volunteer=0.3``, ``p_change=0.1``,
    ``turn_cost=1.0``, ``success_reward=20.0``, ``wrong_penalty=10.0``, ``lost_penalty=10.0``,
    ``handoff_cost=5.0``, ``render_mode=None`` or ``"ansi"``.

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/DialogueEasy-v0", render_mode="ansi")
    >>> env.observation_space.shape, env.action_space
    ((36,), Discrete(16))
    >>> observation, info = env.reset(seed=1)
    >>> env.unwrapped.core.ontology.slot_names  # request slot k is action 1 + k
    ('card', 'account', 'date', 'street', 'city', 'reason')
    >>> for action in (6, 13, 15):  # request the reason, execute, close
    ...     observation, reward, terminated, truncated, info = env.step(action)
    ...     print(reward, terminated)
    -1.0 False
    19.0 False
    -1.0 True
    >>> print(env.render())
    Agent: Harbor Bank customer service, hello.
    User: Please close one of my accounts. It's the savings account.   [heard: intent=close_account (1.00); account=...]
    Agent: May I ask why you'd like to close it?
    User: The reason is: moving abroad.   [heard: reason=moving abroad (1.00)]
    Agent: [executes: close an account] I've closed the savings account; I noted the reason, moving abroad.
    User: Great, thank you!
    Agent: Is there anything else? Have a nice day.
    User: Thanks, goodbye.
    >>> float(info["success"]), float(info["turns"])
    (1.0, 3.0)

    Registered variants (``max_turns=20`` = ``max_episode_steps``; reward thresholds near the
    rule policy's mean return):

    | id                             | semantic error rate | other settings                           |
    |--------------------------------|---------------------|------------------------------------------|
    | ``nlp_envs/Dialogue-v0``       | 15%                 | defaults                                 |
    | ``nlp_envs/DialogueClean-v0``  | 0%                  | defaults                                 |
    | ``nlp_envs/DialogueNoisy-v0``  | 30%                 | defaults                                 |
    | ``nlp_envs/DialogueEasy-v0``   | 0%                  | 4 intents, 6 slots, see below            |

    ``DialogueEasy-v0`` keeps the intents lost card, check balance, change address and close
    account (the slots card, account, date, street, city, reason), with no changed minds,
    ``patience=6`` and ``max_turns=10`` (= ``max_episode_steps``).

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/Dialogue-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    gives :class:`DialogueVectorEnv`, the same core over N slots (see :mod:`nlp_envs.core` for
    seeding and autoreset).

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = DialogueCore


class DialogueVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`DialogueEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = DialogueCore
    reference_policies: ClassVar[dict[str, Any]] = {
        "random": random_policy,
        "rule": rule_policy,
        "oracle": oracle_policy,
    }
