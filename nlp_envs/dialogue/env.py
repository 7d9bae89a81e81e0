"""The dialogue env: the batched core that wires the parts together, and its Env and VectorEnv shells.

One turn (:meth:`DialogueCore.advance`): decode the desk's acts; the user simulator changes its
mind or not, then answers (:mod:`~nlp_envs.dialogue.user`); the channel hears what it said
(:mod:`~nlp_envs.dialogue.channel`); the belief is updated (:mod:`~nlp_envs.dialogue.belief`);
rewards and the call's progress follow. Text comes from :mod:`~nlp_envs.dialogue.text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    check_fits_slots,
    check_int,
    check_probability,
    check_reward,
    count_nonzero,
    short_repr,
    slot_index,
)
from nlp_envs.data.ontology import BUILTIN_ONTOLOGIES, Ontology, load_ontology
from nlp_envs.dialogue.acts import THANK, USER_ACTS, DeskActs, DeskTurn
from nlp_envs.dialogue.belief import Belief, Opening
from nlp_envs.dialogue.channel import NOTHING_HEARD, NOTHING_SAID, Readings, Said, hear
from nlp_envs.dialogue.draws import GOAL_STREAM, TurnDraws, episode_uniforms, uniforms
from nlp_envs.dialogue.policies import oracle_policy, rule_policy
from nlp_envs.dialogue.text import TemplateDraws, TurnRecord, template_hashes, turn_lines
from nlp_envs.dialogue.user import NEVER, NewUsers, UserSimulator, UserState
from nlp_envs.policies import random_policy


@dataclass(frozen=True)
class CallState:
    """The progress of every episode slot's call.

    State rule (all tasks): see :class:`~nlp_envs.dialogue.belief.Belief`.

    Attributes:
        turn: ``(n,)`` desk acts so far.
        done: ``(n,)`` the right task was executed.
        over: ``(n,)`` the call has ended.
        handed_off: ``(n,)`` the desk handed off.
        actions: ``(n, max_turns + 1)`` int16 log of the desk's acts (the last column takes writes
            past the end), from which a batch replays an episode for its text.
    """

    turn: np.ndarray
    done: np.ndarray
    over: np.ndarray
    handed_off: np.ndarray
    actions: np.ndarray

    @classmethod
    def allocate(cls, n: int, max_turns: int) -> CallState:
        """The state of ``n`` episode slots."""
        return cls(
            turn=np.zeros(n, dtype=np.int64),
            done=np.zeros(n, dtype=bool),
            over=np.zeros(n, dtype=bool),
            handed_off=np.zeros(n, dtype=bool),
            actions=np.zeros((n, max_turns + 1), dtype=np.int16),
        )

    def clear(self, slots: np.ndarray | slice) -> None:
        """A new call in ``slots`` (episode slots, or a slice of them)."""
        self.turn[slots] = 0
        self.done[slots] = False
        self.over[slots] = False
        self.handed_off[slots] = False


class Begins(NamedTuple):
    """New episodes drawn from their keys (:meth:`DialogueCore.draw_begins`), one row per key.

    Attributes:
        users: the new users (their goals, plans and openings).
        opening: the desk's belief after the opening.
        turns: ``(m, TurnDraws.BLOCK, 4)`` the first turns' draws (``(m, 0, 4)`` in a large batch,
            which hashes each turn as it comes).
        opening_heard: ``(m, 2)`` what the channel heard of the opening's intent and volunteered
            value (-1: not said).
        opening_conf: ``(m, 2)`` with what confidence.
        templates: ``(m, TemplateDraws.BLOCK, len(TEMPLATE_SALTS))`` the first turns' template hashes
            (:func:`~nlp_envs.dialogue.text.template_hashes`).
        observation: ``(m, obs_size)`` float32, the first observation.
        mask: ``(m, n_actions)`` the first action mask.

    ``opening_heard``, ``opening_conf``, ``templates``, ``observation`` and ``mask`` are for a one-slot
    core, which keeps its text as it plays and its observation and mask up to date; a batch, which
    replays an episode for its text and remakes its observations and masks at every step, gets them
    with no columns.
    """

    users: NewUsers
    opening: Opening
    turns: np.ndarray
    opening_heard: np.ndarray
    opening_conf: np.ndarray
    templates: np.ndarray
    observation: np.ndarray
    mask: np.ndarray


#: The most turns a call may have (``max_turns`` and ``patience``): a call is a few dozen turns;
#: a longer one means nothing to the user model and only takes memory.
MAX_TURNS = 10_000


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
        env = self.env_id
        error_rate = check_probability(env, "error_rate", error_rate)
        p_open_intent = check_probability(env, "p_open_intent", p_open_intent)
        p_volunteer = check_probability(env, "p_volunteer", p_volunteer)
        p_change = check_probability(env, "p_change", p_change)
        if error_rate >= 0.5:
            raise ValueError(
                f"{self.env_id}: error_rate={error_rate!r} must be below 0.5 (above it the channel lies more "
                "often than not); the registered presets use 0.0, 0.15 and 0.3."
            )
        max_turns = check_int(env, "max_turns", max_turns, 1, MAX_TURNS)
        patience = check_int(env, "patience", patience, 1, MAX_TURNS)
        turn_cost = check_reward(env, "turn_cost", turn_cost)
        success_reward = check_reward(env, "success_reward", success_reward)
        wrong_penalty = check_reward(env, "wrong_penalty", wrong_penalty)
        lost_penalty = check_reward(env, "lost_penalty", lost_penalty)
        handoff_cost = check_reward(env, "handoff_cost", handoff_cost)
        if not isinstance(ontology, (str, Path, Ontology)):
            raise ValueError(
                f"{env}: ontology={short_repr(ontology)} is not an ontology; expected a built-in name "
                f"{BUILTIN_ONTOLOGIES}, the path of an ontology .json file, or an nlp_envs.data.ontology.Ontology."
            )
        onto = ontology if isinstance(ontology, Ontology) else load_ontology(ontology)
        if intents is not None:
            if isinstance(intents, str):
                raise ValueError(f"{self.env_id}: intents must be a list of intent names, got the string {intents!r}.")
            if not isinstance(intents, (Sequence, np.ndarray)) or not all(isinstance(name, str) for name in intents):
                raise ValueError(
                    f"{env}: intents must be None or a list of intent names (strings) of the ontology, got "
                    f"{short_repr(intents)}; e.g. intents={list(onto.intent_names[:2])}."
                )
            onto = onto.restrict(tuple(intents))
        self.ontology = onto
        # Per slot: the call's log of acts (int16, max_turns + 1), the belief (a row of values per
        # slot of the ontology, float64), the user and the observation (a few hundred bytes), and
        # the draws of its coming turns.
        width = int(onto.n_values.max())
        slot_bytes = 2 * (max_turns + 1) + 8 * (onto.n_intents + onto.n_slots * width) + 64 * onto.n_slots + 512
        slot_bytes += TurnDraws.SLOT_BYTES
        check_fits_slots(env, f"max_turns={max_turns}", slot_bytes, self.num_envs)
        self.error_rate, self.max_turns, self.patience = error_rate, max_turns, patience
        self.p_open_intent, self.p_volunteer, self.p_change = p_open_intent, p_volunteer, p_change
        self.turn_cost, self.success_reward = turn_cost, success_reward
        self.wrong_penalty, self.lost_penalty, self.handoff_cost = wrong_penalty, lost_penalty, handoff_cost
        self.max_steps = self.max_turns
        self._last_turn = np.array([max_turns])  # the log's last column (takes the acts past the end)
        # The reward terms as one-element arrays: a Python scalar operand costs a small batch more.
        self._reward_terms = tuple(
            np.array([value]) for value in (-turn_cost, success_reward, wrong_penalty, handoff_cost, lost_penalty)
        )
        # The rewards of a turn in which nobody executed or ended the call, by whether the call is active:
        # the same formula, so the same floats (a call already over gets 0.0, not -0.0).
        active, nothing = np.array([False, True]), np.zeros(2, dtype=bool)
        self._turn_rewards = self._rewards(active, nothing, nothing, nothing, nothing)

        n_intents, n_slots = onto.n_intents, onto.n_slots
        self.n_intents, self.n_slots = n_intents, n_slots
        self.required = onto.required
        self.n_values = onto.n_values
        self.simulator = UserSimulator(
            onto,
            patience=self.patience,
            p_open_intent=self.p_open_intent,
            p_volunteer=self.p_volunteer,
            p_change=self.p_change,
        )
        # Actions: ask intent, request slot k, confirm slot k, execute, hand off, close.
        self.desk_acts = desk = DeskActs(n_slots)
        self.ASK, self.EXECUTE, self.HANDOFF, self.CLOSE = desk.ask, desk.execute, desk.handoff, desk.close
        self.n_actions = desk.n
        self._kind_table, self._slot_table, self._evidence_rows = desk.kind_table, desk.slot_table, desk.evidence_rows
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
        self._conf_cells = self.layout["confidence"]
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=(start,), dtype=np.float32)
        self.afterstate_space = spaces.Box(0.0, 1.0, shape=(start + self.n_actions,), dtype=np.float32)

        # The observation's last two cells by turn and by useless turns, as columns (one clipping gather
        # each into the observation instead of a minimum, a product and a new axis): the float64 values
        # cast to float32 once, as writing them would.
        self._turn_column = (np.arange(self.max_turns + 1) * (1.0 / self.max_turns))[:, None].astype(np.float32)
        self._annoyance_column = (np.arange(self.patience + 1) * (1.0 / self.patience))[:, None].astype(np.float32)
        self._goal_blocks = -(-(n_slots + 1) // 4)
        self._allocate(self.num_envs)

    def _allocate(self, n: int) -> None:
        """Allocate the state of ``n`` episode slots: the users, the desk's belief about them, the calls."""
        self._rows = np.arange(n)
        self._row_cells = self._rows * self.n_slots  # the flat index of each row's slot 0 in (n, n_slots) arrays
        self._log_cells = self._rows * (self.max_turns + 1)  # the flat index of each row's turn 0 in the log of acts
        self._intent_sizes = np.full(n, self.n_intents)  # the channel's set size of every intent reading
        self.user = UserState.allocate(n, self.n_slots)
        self.belief = Belief.allocate(n, self.ontology)
        self.call = CallState.allocate(n, self.max_turns)
        self.turn_draws = TurnDraws(n)
        # Views of the state as the observation and the masks read it, made once (indexing costs at every step).
        self._intent_heard_column = self.belief.intent_heard[:, None]
        self._thanked_column = self.user.acts[:, THANK : THANK + 1]
        # A one-slot core keeps its episode's turns for text(); a batch replays instead (no per-slot
        # work per step).
        self._history: list[TurnRecord] | None = [] if n == 1 else None
        self._history_text = ""  # the text of the kept turns, each formatted once
        self._history_turns = 0  # how many kept turns it holds
        self._history_draws: TemplateDraws | None = None  # their template choices
        # The observations, kept with the state: each update writes the cells it changes (cast to float32
        # there), so that observe() is one copy. Never handed out, as a caller may write into it.
        self._obs = np.zeros((n, self.obs_size), dtype=np.float32)
        part = {name: self._obs[:, where] for name, where in self.layout.items()}
        self._obs_intent, self._obs_intent_heard, self._obs_filled = (
            part["intent"],
            part["intent_heard"],
            part["filled"],
        )
        self._obs_conf, self._obs_needed, self._obs_acts = part["confidence"], part["needed"], part["user_act"]
        self._obs_turn, self._obs_annoyance = part["turn"], part["annoyance"]
        # The action masks, kept while the state they read does not change (see advance).
        self._mask = np.zeros((n, self.n_actions), dtype=bool)
        self._obs_stale = self._mask_stale = True  # remade from the state when next read
        self._thanked = False  # whether a user thanked in the last turn (its mask changes with the next)
        # Whether a user may change its mind (most calls plan none: their turns skip the test of who is due).
        self._changes_planned = False
        self._opening_saids: dict[tuple[bool, int], Said] = {}
        self._columns: dict[tuple[int, bool], np.ndarray] = {}  # see _column

    # ----------------------------------------------------------------------------------- episodes
    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw each slot's user (goal, opening, changed mind) from its episode key; the user speaks first."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> Begins:
        """The new episodes of ``keys`` (row ``i``: ``keys[i]``), up to the desk's belief after the opening.

        Everything a begin computes is a function of the key: the goal, the user's plan and opening,
        what the channel heard of it, the belief it leaves and the first turns' draws.
        """
        blocks = self._goal_blocks + 2
        # A small batch keeps blocks of turn draws: it hashes the first with the goal's, in one call.
        if self.turn_draws.blocks:
            draws, turns = episode_uniforms(keys, blocks)
        else:
            draws, turns = (
                uniforms(keys, GOAL_STREAM, 0, blocks),
                self.turn_draws.block(keys, np.zeros(len(keys), dtype=np.int64)),
            )
        intents, values = self.simulator.goals(draws)
        return self._draw(keys, intents, values, draws[:, 4 * self._goal_blocks :], turns)

    def _draw(
        self, keys: np.ndarray, intents: np.ndarray, values: np.ndarray, draws: np.ndarray, turns: np.ndarray
    ) -> Begins:
        """The new episodes of ``keys`` with goals ``(intents, values)`` (see :meth:`draw_begins`)."""
        users, opening = self.simulator.draw(keys, intents, values, draws)
        m, said = len(keys), opening.said
        sizes = self._intent_sizes if m <= len(self._intent_sizes) else np.full(m, self.n_intents)
        readings = self._hear(said, opening.draws, users.intent, users.values, sizes)
        belief = self.belief.opening(said, readings, users.intent_told, self.simulator.first_slot.take(intents))
        if self._history is None:  # a batch replays an episode for its text: no opening record, no templates
            return Begins(users, belief, turns, *self._no_text_rows(m))
        # The first observation; the turn and the useless turns are 0 (cells 0.0).
        no_turns = np.zeros((m, 1))
        observation = self._joined(belief, belief.intent_heard[:, None], users.acts, no_turns, no_turns, np.float32)
        # What the channel heard of the opening, by row: the intent (column 0) and the volunteered
        # value (column 1), -1 where nothing was said (for the single env's text).
        heard, conf = np.empty((m, 2), dtype=np.int64), np.zeros((m, 2))
        heard.fill(-1)
        items = np.concatenate((2 * said.intent_rows, 2 * said.b_rows + 1))
        heard.put(items, readings.heard)
        conf.put(items, readings.conf)
        templates = template_hashes(keys, 0)
        thanked = users.acts[:, THANK : THANK + 1]
        mask = self._masks(belief.intent_heard, belief.heard, belief.needed, observation[:, self._conf_cells], thanked)
        return Begins(users, belief, turns, heard, conf, templates, observation, mask)

    @staticmethod
    def _no_text_rows(m: int) -> tuple[np.ndarray, ...]:
        """The one-slot fields of :class:`Begins` in a batch core (which keeps no history): ``m`` empty rows each."""
        return (
            np.zeros((m, 0), dtype=np.int64),
            np.zeros((m, 0)),
            np.zeros((m, 0, 0), dtype=np.uint64),
            np.zeros((m, 0), dtype=np.float32),
            np.zeros((m, 0), dtype=bool),
        )

    def begin_drawn(self, slots: np.ndarray, drawn: Begins) -> None:
        """Start episodes in ``slots`` from the rows of ``drawn``: the state writes."""
        picked = slot_index(slots)  # the state's rows of ``slots`` (a slice for one slot: cheaper to write)
        # A one-slot core starts from the drawn observation and mask (of its one row); a batch remakes them.
        if self._history is not None and len(slots):
            self._obs[picked] = drawn.observation
            self._mask[picked] = drawn.mask
            self._obs_stale = self._mask_stale = False
        else:
            self._obs_stale = self._mask_stale = True
        self.call.clear(picked)
        planned = bool(count_nonzero(drawn.users.change_turn < NEVER))
        self._changes_planned = planned if len(slots) == self.num_envs else self._changes_planned or planned
        self.turn_draws.put(picked, 0, drawn.turns)
        self.user.start(picked, drawn.users)
        self.belief.start(picked, slots, drawn.opening)
        if self._history is not None and len(slots):
            self._history = [self._opening_record(drawn)]
            self._history_text, self._history_turns = "", 0
            self._history_draws = TemplateDraws(drawn.users.keys[:1].copy(), drawn.templates[0].copy())

    def _opening_record(self, drawn: Begins) -> TurnRecord:
        """The opening turn of ``drawn``'s first row, for the one-slot core's text (copies, not views of ``drawn``)."""
        (intent_heard, value_heard), confs = drawn.opening_heard[0].tolist(), drawn.opening_conf[0].tolist()
        intent, told = int(drawn.users.intent[0]), intent_heard >= 0
        slot = int(self.simulator.first_slot[intent]) if value_heard >= 0 else -1
        said = (told, slot >= 0)  # the intent, the volunteered value: the readings in this order
        if not told and slot < 0:  # a greeting alone: the shared record of nothing heard (read only)
            readings = NOTHING_HEARD
        else:
            truth = [part for part, kept in zip((intent, int(drawn.users.values[0, slot])), said, strict=True) if kept]
            heard = [part for part, kept in zip((intent_heard, value_heard), said, strict=True) if kept]
            conf = [part for part, kept in zip(confs, said, strict=True) if kept]
            readings = Readings(
                np.array(truth, dtype=np.int64), np.array(heard, dtype=np.int64), np.array(conf), int(told)
            )
        acts = self.simulator.opening_acts[int(told)]  # a row of a read-only table
        return TurnRecord(
            self.desk_acts.opening,
            0,
            drawn.opening.slot_value[0].tolist(),
            acts,
            self._opening_said(told, slot),
            readings,
        )

    def _opening_said(self, told: bool, slot: int) -> Said:
        """What a one-slot core's opening said (the intent or not; the volunteered slot or -1): one shared record."""
        said = self._opening_saids.get((told, slot))
        if said is None:
            one, nothing = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
            b_rows, b_slots = (one, np.array([slot])) if slot >= 0 else (nothing, nothing)
            said = Said(
                one if told else nothing, nothing, nothing, b_rows, b_slots, np.zeros(0, bool), nothing, -1 - b_rows
            )
            for part in said:
                part.flags.writeable = False
            self._opening_saids[(told, slot)] = said
        return said

    def begin_with_goals(
        self,
        slots: np.ndarray,
        keys: np.ndarray,
        intents: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Start episodes in ``slots`` with given goals (for tests and curricula); the rest comes from ``keys``.

        Args:
            slots: episode slots, shape ``(m,)``.
            keys: uint64 episode keys (the user's opening, noise and changed mind), shape ``(m,)``.
            intents: goal intent ids, shape ``(m,)``.
            values: goal value ids for every slot, shape ``(m, n_slots)`` (only the intent's slots matter).
        """
        slots = np.asarray(slots, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.uint64)
        intents = np.asarray(intents, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64).reshape(len(slots), self.n_slots)
        draws = uniforms(keys, GOAL_STREAM, 0, self._goal_blocks + 2)[:, 4 * self._goal_blocks :]
        turns = self.turn_draws.block(keys, np.zeros(len(keys), dtype=np.int64))
        self.begin_drawn(slots, self._draw(keys, intents, values, draws, turns))

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One desk act per slot, the user's answer through the noisy channel, the belief update."""
        user, belief, call = self.user, self.belief, self.call
        draws = self.turn_draws.take(user.keys, call.turn)  # intent, A and B channels; volunteering
        if self._history is not None:
            before = (belief.intent_value.item(0), belief.slot_value.tolist()[0])  # what the desk's text says
        active = ~call.over
        live = active > call.done  # the call goes on and the task is not done
        desk = self._decode(actions, live)
        change = self.simulator.change_mind(user, desk, call.turn) if self._changes_planned else None
        if change is not None:
            belief.forget(np.flatnonzero(change), user.change_slot[change])
        reply = self.simulator.respond(user, desk, change, active, draws)
        readings = self._hear(reply.said, reply.draws, user.goal_intent, user.goal_values, self._intent_sizes)
        # Each slot's row of the intent evidence of the user's act (0 unless the desk asked about a slot).
        act_rows = self._evidence_rows[reply.irrelevant.view(np.int8), actions] * desk.asks_slot
        needed = belief.hear_turn(reply.said, readings, act_rows)

        # A fresh array either way (the shells may write into it); most turns nobody hangs up.
        terminated = reply.bye | reply.hangup if count_nonzero(reply.hangup) else reply.bye
        call.actions.put(self._log_cells + np.minimum(call.turn, self._last_turn), actions)  # flat: cheaper
        # The state written in place with [...] = (cheaper than out= on a small batch).
        call.turn[...] = call.turn + active
        if reply.executing or count_nonzero(terminated):
            rewards = self._rewards(active, reply.thank, reply.complain, desk.handoff, desk.close | reply.hangup)
            call.handed_off[...] = call.handed_off | desk.handoff  # a hand-off ends the call
            call.over[...] = call.over | terminated
            call.done[...] = call.done | reply.thank
        else:  # nobody executed or ended a call (most turns of a small batch): the turn costs alone, one gather
            rewards = self._turn_rewards.take(active.view(np.int8))
        if self._history is not None and active[0]:
            self._history.append(TurnRecord(actions.item(0), *before, reply.acts[0].copy(), reply.said, readings))
        # The observation's cells this turn changed (cast to float32 as they are written): the intent
        # belief, the user's acts, the turn and the annoyance always; the rest when they were written.
        # When the slots and the needed slots changed too (every turn of a large batch) one concatenation
        # writes them all when the observation is next read: on many rows a write of a few columns costs
        # more than its share of it.
        slots = change is not None or len(readings.truth) > readings.n_intents  # a slot forgotten or heard
        if slots and needed or self._obs_stale:
            self._obs_stale = True
        else:
            self._obs_intent[...] = belief.intent_belief
            if readings.n_intents:
                self._obs_intent_heard[...] = self._intent_heard_column
            if slots:
                self._obs_filled[...] = belief.heard
                self._obs_conf[...] = belief.slot_conf
            if needed:
                self._obs_needed[...] = belief.needed
            self._obs_acts[...] = reply.acts
            self._turn_column.take(call.turn, axis=0, out=self._obs_turn, mode="clip")
            self._annoyance_column.take(user.useless, axis=0, out=self._obs_annoyance, mode="clip")
        # The masks read the intent heard, the filled slots, their confidences, the needed slots and
        # the thanks: they change with a reading, a changed mind, a new needed slot, or a thank given
        # now or in the last turn (most turns of a small batch change none).
        if len(readings.truth) or change is not None or needed or reply.executing or self._thanked:
            self._mask_stale = True
        self._thanked = reply.executing and bool(count_nonzero(reply.thank))
        return rewards, terminated

    def _observation(self) -> np.ndarray:
        """The kept observations, remade from the state first if stale (never handed out: see ``_allocate``)."""
        if self._obs_stale:
            self._write_observation()
            self._obs_stale = False
        return self._obs

    def _write_observation(self) -> None:
        """Write the whole observation from the state (one concatenation in the order of ``self.layout``)."""
        belief, call, user = self.belief, self.call, self.user
        turn = self._turn_column.take(call.turn, axis=0, mode="clip")
        annoyance = self._annoyance_column.take(user.useless, axis=0, mode="clip")
        self._joined(belief, self._intent_heard_column, user.acts, turn, annoyance, None, self._obs)

    @staticmethod
    def _joined(
        belief: Belief | Opening,
        intent_heard: np.ndarray,
        acts: np.ndarray,
        turn: np.ndarray,
        annoyance: np.ndarray,
        dtype: type | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The observation's parts joined in the order of ``self.layout`` (one concatenation, into ``out`` if given).

        Args:
            belief: the desk's belief (the state's, or a drawn opening's).
            intent_heard: ``(m, 1)`` whether the intent was heard.
            acts: ``(m, len(USER_ACTS))`` the user's last acts.
            turn: ``(m, 1)`` the turn cells.
            annoyance: ``(m, 1)`` the useless-turn cells.
            dtype: the result's dtype when there is no ``out``.
            out: ``(m, obs_size)`` float32 to write into.
        """
        parts = (belief.intent_belief, intent_heard, belief.heard, belief.slot_conf, belief.needed)
        return np.concatenate((*parts, acts, turn, annoyance), axis=1, dtype=dtype, out=out)

    def _rewards(
        self, active: np.ndarray, thank: np.ndarray, complain: np.ndarray, handoff: np.ndarray, lost: np.ndarray
    ) -> np.ndarray:
        """The turn's rewards: its cost in live calls, the success, the wrong execution, the hand-off, the lost call."""
        turn_cost, success, wrong, handoff_cost, lost_penalty = self._reward_terms
        rewards = active * turn_cost + thank * success - complain * wrong
        return rewards - (handoff * handoff_cost + lost * lost_penalty)

    def _decode(self, act: np.ndarray, live: np.ndarray) -> DeskTurn:
        """The desk's acts by kind in the ``live`` calls (a gather from the act table, an ``&``), with the belief."""
        belief = self.belief
        # (kinds, n): each kind a contiguous row, in the order of DESK_KINDS (take: a fraction of the cost
        # of fancy indexing on a small batch). Every part of the turn reads a kind in live calls only.
        kinds = self._kind_table.take(act, axis=1) & live
        slot = self._slot_table.take(act)
        # From a tuple, the kinds' rows in DESK_KINDS order (the order of DeskTurn's fields): keywords cost more.
        return DeskTurn._make(
            (
                self._rows,
                act,
                *kinds,
                slot,
                self._row_cells + slot,
                belief.intent_heard,
                belief.intent_value,
                belief.heard,
                belief.slot_value,
            )
        )

    def _hear(
        self,
        said: Said,
        draws: tuple[np.ndarray, np.ndarray, np.ndarray],
        goal_intent: np.ndarray,
        goal_values: np.ndarray,
        intent_sizes: np.ndarray,
    ) -> Readings:
        """The channel's readings of what the users of goals ``(goal_intent, goal_values)`` said."""
        if said is NOTHING_SAID:  # the shared record of a turn in which nobody said anything
            return NOTHING_HEARD
        return hear(
            said,
            goal_intent=goal_intent,
            goal_values=goal_values,
            intent_sizes=intent_sizes,
            n_values=self.n_values,
            draws=draws,
            error_rate=self.error_rate,
        )

    # ----------------------------------------------------------------------------------- views
    def observe(self) -> np.ndarray:
        """The belief state: see the observation table of :class:`DialogueEnv` (a copy the caller owns)."""
        return self._observation().copy()

    def masks_from_observations(self, observations: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` bool: the acts that make sense in each belief state (a function of it only).

        After the user thanks: only close. Otherwise: ask the intent and hand off always; request a
        slot the believed intent needs (any slot while the intent is unknown) unless it is certain;
        confirm a filled, uncertain slot the intent needs; execute once the intent and all its
        needed slots are filled; never close before the task is done.
        """
        layout = self.layout
        observations = np.asarray(observations)
        thanked = layout["user_act"].start + THANK
        return self._masks(
            observations[:, layout["intent_heard"].start] > 0.5,
            observations[:, layout["filled"]] > 0.5,
            observations[:, layout["needed"]] > 0.5,
            observations[:, layout["confidence"]],
            observations[:, thanked : thanked + 1] > 0.5,
        )

    def _masks(
        self, intent_known: np.ndarray, filled: np.ndarray, needed: np.ndarray, conf: np.ndarray, thanked: np.ndarray
    ) -> np.ndarray:
        """The mask rule of :meth:`masks_from_observations`, from the belief's parts (``thanked``: ``(n, 1)``)."""
        # The columns in action order (ask, requests, confirms, execute, hand off, close), joined in one
        # call: on a small batch each numpy call costs more than its work, so few and whole-row ones,
        # and the parts that change nothing are skipped after a count (a fraction of a ufunc's cost):
        # while nobody has thanked (most steps) every slot waits, and an intent known in every slot or
        # in none settles which slots are needed.
        n = len(intent_known)
        thanking = count_nonzero(thanked)
        waiting = ~thanked if thanking else self._column(n, True)
        knowing = count_nonzero(intent_known)
        uncertain = conf < 0.999
        # Requests: the needed slots (every slot while the intent is unknown) that are not certain.
        # Execute: the intent is known, no thanks yet, and every needed slot is filled.
        if knowing == n:  # ``needed >= known`` is ``needed`` itself
            requests = needed & uncertain
            execute = np.logical_and.reduce(needed <= filled, axis=1, keepdims=True)
        elif knowing:
            known = intent_known[:, None]
            needed = needed >= known
            requests = needed & uncertain
            execute = np.logical_and.reduce(needed <= filled, axis=1, keepdims=True) & known
        else:  # no intent known anywhere: every uncertain slot may be requested, nothing executed
            requests, execute = uncertain, self._column(n, False)
        if thanking:
            requests, execute = requests & waiting, execute & waiting
        return np.concatenate((waiting, requests, requests & filled, execute, waiting, thanked), axis=1)

    def _column(self, n: int, value: bool) -> np.ndarray:
        """``(n, 1)`` of ``value``: one shared read-only column per batch size (joined into masks, never written)."""
        column = self._columns.get((n, value))
        if column is None:
            column = self._columns[(n, value)] = np.full((n, 1), value)
            column.flags.writeable = False
        return column

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)``: the acts that make sense now (see :meth:`masks_from_observations`).

        The same rule on the same belief, read from the state rather than parsed back from the
        observation (the confidences are the observation's float32 values, so both agree exactly).
        """
        return self._kept_masks().copy()

    def _kept_masks(self) -> np.ndarray:
        """The kept masks, remade from the state first if stale (handed out only to callers that copy them)."""
        if self._mask_stale:
            belief, conf = self.belief, self._observation()[:, self._conf_cells]
            self._mask = self._masks(belief.intent_heard, belief.heard, belief.needed, conf, self._thanked_column)
            self._mask_stale = False
        return self._mask

    def step_info(self) -> dict[str, np.ndarray]:
        """``action_mask`` for every slot: the kept masks themselves (the framework copies what it hands out)."""
        return {"action_mask": self._kept_masks()}

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """``success`` (the right task was executed), ``turns`` (agent acts) and ``handoff`` (0/1)."""
        return {
            "success": self.call.done[slots].astype(np.float64),
            "turns": self.call.turn[slots].astype(np.float64),
            "handoff": self.call.handed_off[slots].astype(np.float64),
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
        """The dialogue so far: each desk act and user answer, with what the understanding heard.

        A one-slot core (the single env) keeps its episode's turns, and formats each once, as it
        plays them (the single env asks for the text every step); a batch
        replays the slot's episode from its key and logged acts in a one-slot copy (text stays
        out of the batched hot path).
        """
        turns = min(int(self.call.turn[slot]), self.max_turns)
        kept = self._history_draws  # set with the history by begin_drawn
        if self._history is not None and kept is not None and len(self._history) == turns + 1:
            for turn in range(self._history_turns, turns + 1):
                lines = turn_lines(self.ontology, self.desk_acts, self._history[turn], kept, turn)
                self._history_text += ("\n" if turn else "") + "\n".join(lines)
            self._history_turns = turns + 1
            return self._history_text
        draws = TemplateDraws(self.user.keys[slot : slot + 1])
        per_turn = [
            turn_lines(self.ontology, self.desk_acts, record, draws, turn)
            for turn, record in enumerate(self._replay(slot, turns))
        ]
        return "\n".join(line for lines in per_turn for line in lines)

    def _replay(self, slot: int, turns: int) -> list[TurnRecord]:
        """Re-simulate the first ``turns`` turns of ``slot``'s episode; one record per turn (opening first)."""
        replay, user = self._replayer, self.user
        replay.begin_with_goals(
            np.zeros(1, np.int64),
            user.keys[slot : slot + 1],
            user.start_intent[slot : slot + 1],
            user.start_values[slot : slot + 1],
        )
        records = []
        for turn in range(turns + 1):
            if turn:
                replay.advance(self.call.actions[slot, turn - 1 : turn].astype(np.int64))
            records.append(cast(list, replay._history)[-1])  # a one-slot core keeps its history
        return records


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
    2. Truncation: ``max_turns`` agent acts, no penalty. The registered ``max_episode_steps``
       equals ``max_turns``, so Gymnasium's ``TimeLimit`` cuts at the same step as the env.

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

    Bounds (the constructor refuses anything else, naming the argument): probabilities in
    ``[0, 1]`` (``error_rate`` below 0.5), ``1 <= max_turns, patience <= 10,000`` (a call is a few
    dozen turns; more has no meaning for the user model), and rewards and costs at most ``1e6``
    in size (:data:`nlp_envs.core.REWARD_BOUND`). Integers are Python or numpy integers, never
    ``bool``; numbers are finite. ``num_envs`` slots whose state would not fit in memory are
    refused with the estimate and the limit (:func:`nlp_envs.resources.check_fits`).

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
