"""QA: retrieval question answering (answer selection) on real chats, inspecting candidates at a cost."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import chain, compress
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    check_file_option,
    check_float,
    hash_keys,
    random_integers,
    slot_index,
)
from nlp_envs.data import CHATTERBOT
from nlp_envs.data.files import TABLE_SUFFIXES, DataFileError
from nlp_envs.data.qa_pairs import FEATURES, QA_DATASETS, load_pairs
from nlp_envs.policies import random_policy

SPLITS = ("train", "test")
#: The default column names of a pairs file (named datasets have their own).
QUESTION_COLUMN, ANSWER_COLUMN = "question", "answer"
# The outcomes of a step: a wrong answer, the true answer, a first inspection, a repeated one.
WRONG, RIGHT, INSPECT, REPEAT = 0, 1, 2, 3
# Random streams of begin(): the question, the hard window, a random distractor for each of the
# columns 1 .. candidates - 1, then `candidates` for the order; redraws of repeated answers use
# their own counter.
_QUESTION, _WINDOW, _REDRAW = 0, 1, 3
_HINT_STREAM = 1 << 20  # counters of the answer hint's noise draws, apart from the candidate draws
#: The texts of the features (all in [-1, 1]) as "{:.2f}" shows them, by code (_feature_codes): code
#: k + 100 is k / 100, for k in -100 .. 100; the last, "-0.00", a negative feature that rounds to zero.
_FEATURE_TEXTS = np.array([f"{k / 100:.2f}" for k in range(-100, 101)] + ["-0.00"], dtype=object)
#: Answer lengths are shown as words / LENGTH_SCALE, clipped to 1.
LENGTH_SCALE = 50
# Operands of the per-step numpy calls are one-element arrays, not Python scalars: numpy resolves
# a Python scalar's type at every call, which costs a one-slot call (the single env) about half again.
_TOP_BITS = np.array([11], dtype=np.uint64)  # a hash shifted right by this keeps its top 53 bits
# A hash's top 53 bits times 2**-53 is its uniform in [0, 1) (hashes_to_uniform). The hint's noise
# scales those uniforms by -1 and by 2 pi: the scale folded into the power of two is the same
# float64 product (scaling by a power of two is exact), one numpy call fewer.
_MINUS_UNIT, _TWO_PI_UNIT = np.array([-(2.0**-53)]), np.array([2.0 * np.pi * 2.0**-53])
_ZERO, _ZERO_FLOAT = np.array([0]), np.array([0.0], dtype=np.float32)
# Per outcome code (WRONG, RIGHT, INSPECT, REPEAT): the outcome of taking that act again (an
# inspection, once made, repeats), and the ``correct`` metric. An act's code is 4 * act + outcome.
_AGAIN = np.array([WRONG, RIGHT, REPEAT, REPEAT])
_OUTCOMES = len(_AGAIN)
_CORRECT = np.array([0.0, 1.0, 0.0, 0.0])
# The first columns of QACore's per-slot integers (the counters), and what a step keeps of them
# (the others it sets); the target is the true answer's position.
_STEPS, _INSPECTIONS, _ANSWER, _POSITION, _OUTCOME, _TARGET = range(6)
_KEPT = np.array([1, 1, 0, 0, 0, 1])
_COUNTERS = len(_KEPT)
_MINUS_TWO, _MINUS_ONE, _PLUS_ONE = np.array([-2.0]), np.array([-1.0]), np.array([1.0])


@dataclass(frozen=True)
class QAState:
    """Each episode slot's question, candidates and what has been inspected (arrays, first axis the slot).

    Attributes:
        question: the question's pair index in the split.
        candidates: ``(n, candidates)`` pair indices whose answers are the candidates, in shown order.
        target: the position of the true answer among the candidates.
        features: ``(n, candidates, features)`` match features of every candidate, with the answer hint
            last when there is one (hidden until inspected).
        acts: ``(n, 2 * candidates)`` per act (the inspections, then the answers), the code of taking it
            now: ``4 * action + outcome``, where the outcome is WRONG, RIGHT, INSPECT or REPEAT (the bandit's
            inspections, which are no actions, are REPEAT: every candidate is shown from the start).
        steps: steps taken.
        inspections: inspect acts taken (repeats included: each paid its cost).
        answer: the position answered (-1: none yet, or the episode ended on a repeated inspection).
        position: the candidate the last step acted on.
        outcome: the last step's outcome (INSPECT at the start: the episode goes on).
    """

    question: np.ndarray
    candidates: np.ndarray
    target: np.ndarray
    features: np.ndarray
    acts: np.ndarray
    steps: np.ndarray
    inspections: np.ndarray
    answer: np.ndarray
    position: np.ndarray
    outcome: np.ndarray

    @property
    def inspected(self) -> np.ndarray:
        """``(n, candidates)`` which candidates were inspected (a new array)."""
        return self.acts[:, : self.acts.shape[1] // 2] % _OUTCOMES == REPEAT


class QADraws(NamedTuple):
    """What :meth:`QACore.draw_begins` draws from episode keys alone (first axis the episode).

    Attributes:
        ints: ``(m, 3 * candidates + 7)`` each episode's row of the per-slot integers at its start: the
            counters, the acts' outcomes, the candidates' pair indices and the question's.
        obs: ``(m, width)`` float32, the observation at the start.
        revealed: ``(m, candidates, features + 1)`` float32, each candidate's features and a 1: what an
            inspection writes into its features' cells and inspected flag (the bandit's ``(m, 0)``: its
            features are shown from the start, in ``obs``).
        texts: object, the texts of each episode's text: its text at the start, then the candidates' answers
            (for the end's line); the MDP's then its lines (the question, then per candidate its position and
            answer) and per candidate and feature its labelled text (as "{:.2f}" shows the feature: a
            candidate's joined are what an inspection appends to its line). Drawn by a one-slot core (the
            single env shows the text at every reset and step). A batch core's are ``(m, 0)``: it makes a
            slot's from its state when the slot's text is asked.
    """

    ints: np.ndarray
    obs: np.ndarray
    revealed: np.ndarray
    texts: np.ndarray


@dataclass(slots=True)
class _TextParts:
    """What :meth:`QACore.text` keeps of a slot's episode: its lines so far and the text they make.

    Attributes:
        lines: the question, then one line per candidate (with its features once inspected); empty
            in the bandit, whose text shows every candidate from the start (no line changes later).
        codes: the inspections' codes the lines show (an inspection's is INSPECT until it is made, then
            REPEAT: a candidate whose code changed gets its features); empty in the bandit.
        body: the lines joined.
        pieces: per candidate and feature, its labelled text (``QADraws.texts``); a candidate's joined
            are its features' text. None in a batch core's episode: it formats a candidate's features'
            numbers when the candidate is first seen inspected.
        answers: each candidate's answer text, in shown order.
    """

    lines: list[str]
    codes: list[int]
    body: str
    pieces: list[str] | None
    answers: list[str]


def _feature_codes(features: np.ndarray, offsets: np.ndarray | int = 0) -> np.ndarray:
    """Each float32 feature's index in ``_FEATURE_TEXTS``: its text, as "{:.2f}" shows it.

    A float32 times 100 is exact in float64 (a 24-bit significand times a 5-bit one), so rint()
    rounds its exact value half to even, as "{:.2f}" rounds the decimal expansion.

    Args:
        features: float32 features in [-1, 1].
        offsets: added to each code (broadcast against ``features``): the index of a table of texts
            made of ``_FEATURE_TEXTS`` repeated, each block for its own cells (e.g. with its feature's label).
    """
    hundredths = np.rint(features.astype(np.float64) * 100.0).astype(np.int64)
    return np.where(
        (hundredths == 0) & np.signbit(features), offsets + (len(_FEATURE_TEXTS) - 1), hundredths + (offsets + 100)
    )


class QACore(TaskCore):
    """Batched answer-selection dynamics; see :class:`QAEnv` for the documentation."""

    env_id = "nlp_envs/QA-v0"
    metric_names = ("correct", "inspections")
    end_info_names = ("target", "answer")

    def __init__(
        self,
        num_envs: int,
        *,
        pairs: str = CHATTERBOT.name,
        question_column: str = QUESTION_COLUMN,
        answer_column: str = ANSWER_COLUMN,
        split: str = "train",
        candidates: int = 10,
        hard_distractors: int | None = None,
        bandit: bool = False,
        inspect_cost: float = 0.01,
        answer_hint: float | None = None,
    ) -> None:
        super().__init__(num_envs)
        if not isinstance(pairs, (str, Path)) or (
            str(pairs) not in QA_DATASETS and Path(pairs).suffix not in TABLE_SUFFIXES
        ):
            raise ValueError(
                f"{self.env_id}: pairs={pairs!r} is neither a named dataset {QA_DATASETS} nor the path of a "
                f"file with suffix {TABLE_SUFFIXES} (with columns question and answer)."
            )
        for name, value, default in (
            ("question_column", question_column, QUESTION_COLUMN),
            ("answer_column", answer_column, ANSWER_COLUMN),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{self.env_id}: {name} must be a non-empty column name, got {value!r}.")
            check_file_option(self.env_id, name, value, default, "pairs", pairs, QA_DATASETS)
        if split not in SPLITS:
            raise ValueError(f"{self.env_id}: split={split!r} is not one of {SPLITS}.")
        if not isinstance(bandit, (bool, np.bool_)):
            raise ValueError(f"{self.env_id}: bandit must be True or False, got {bandit!r}.")
        if hard_distractors is None:  # about half the distractors (4 of 9 by default)
            hard_distractors = (candidates - 1) // 2 if isinstance(candidates, (int, np.integer)) else 0
        for name, count, low, high in (
            ("candidates", candidates, 2, 100),
            ("hard_distractors", hard_distractors, 0, 99),
        ):
            if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or not low <= count <= high:
                raise ValueError(f"{self.env_id}: {name} must be an integer in [{low}, {high}], got {count!r}.")
        if hard_distractors > candidates - 1:
            raise ValueError(
                f"{self.env_id}: hard_distractors={hard_distractors} exceeds the candidates - 1 = {candidates - 1} "
                "distractors; pass at most that many."
            )
        if (
            not isinstance(inspect_cost, (int, float, np.number))
            or isinstance(inspect_cost, bool)
            or not 0 <= inspect_cost <= 1
        ):
            raise ValueError(
                f"{self.env_id}: inspect_cost must be a number in [0, 1] (the cost of one inspection; a right "
                f"answer pays 1), got {inspect_cost!r}."
            )
        self.hint: float | None = None
        self._hint_scale = np.zeros(1)  # the hint's standard deviation, as an operand of _hints()
        if answer_hint is not None:
            self.hint = check_float(
                self.env_id,
                "answer_hint",
                answer_hint,
                0.0,
                fix="pass the standard deviation of the hint feature's noise (e.g. 0.25), or None for no hint",
            )
            self._hint_scale = np.array([self.hint])
        self.pairs_name, self.split, self.bandit = str(pairs), split, bool(bandit)
        self.candidates, self.hard_distractors, self.inspect_cost = (
            int(candidates),
            int(hard_distractors),
            float(inspect_cost),
        )
        self.data = load_pairs(self.pairs_name, question_column, answer_column).split(split)
        if self.data.distinct_answers < self.candidates:
            raise DataFileError(
                f"{self.env_id}: pairs={self.pairs_name!r} has {self.data.distinct_answers} distinct answers in its "
                f"{split} split, fewer than candidates={self.candidates}; pass a smaller candidates or give more pairs."
            )
        n = self.candidates
        #: Features per candidate: the match features, and the answer hint when there is one.
        self.feature_names = FEATURES + (() if self.hint is None else ("hint",))
        self.answer_offset = 0 if self.bandit else n
        self.single_action_space = spaces.Discrete(n if self.bandit else 2 * n)
        width = len(self.feature_names) * n + 2 * n + 1
        self.single_observation_space = spaces.Box(-1.0, 1.0, shape=(width,), dtype=np.float32)
        self.afterstate_space = spaces.Box(
            -1.0, 1.0, shape=(width + int(self.single_action_space.n),), dtype=np.float32
        )
        # Every episode ends by step candidates + 1 (after all inspections only an answer or a repeat
        # is left, and both end it); the bandit's first step answers.
        self.last_step = 1 if self.bandit else n + 1
        # The step limit is one more, so that it never cuts an episode (the step that reaches the
        # limit is truncated even when it terminates).
        self.max_steps = self.last_step + 1
        f = len(self.feature_names)
        # The per-slot integers as the columns of one array, so that begin() writes a slot's row at
        # once, a step computes the counters in one table lookup, and the metrics and the text read
        # them at once: the counters (steps, inspections, answer, position, outcome, target); per act
        # (the inspections, then the answers: the bandit's acts are its answers, they index the second
        # half) its code 4 * act + outcome, the outcome if taken now (INSPECT, then RIGHT at the target
        # and WRONG elsewhere at the start; an inspection once made repeats: REPEAT), so that a step
        # reads every table by the code; the candidates' pair indices; the question's.
        self._acts_column = _COUNTERS
        self._candidates_column = _COUNTERS + 2 * n
        self._ints = np.zeros((num_envs, 3 * n + _COUNTERS + 1), dtype=np.int64)
        self._ints_flat = self._ints.reshape(-1)
        self._counters = self._ints[:, :_COUNTERS]
        self._act_codes = self._ints[:, _COUNTERS : _COUNTERS + 2 * n]
        # A row before any episode (and the constant part of every episode's first row): the
        # counters at the start, no inspection yet (the bandit's are all made) and every answer WRONG.
        self._start = np.zeros(self._ints.shape[1], dtype=np.int64)
        self._start[:_COUNTERS] = [0, 0, -1, 0, INSPECT, 0]
        columns_acts = np.arange(2 * n) - (n - self.answer_offset)  # each act column's act
        self._start[_COUNTERS : _COUNTERS + 2 * n] = _OUTCOMES * columns_acts + WRONG
        self._start[_COUNTERS : _COUNTERS + n] = REPEAT if self.bandit else _OUTCOMES * columns_acts[:n] + INSPECT
        self._ints[:] = self._start
        # Every slot's observation, updated in place by begin() and advance(); observe() copies it.
        self.obs = np.zeros((num_envs, width), dtype=np.float32)
        # A batch core draws its begins' integers and observations into these, which begin_drawn copies
        # into the state right after: a whole batch's fresh arrays at every begin made glibc give their
        # pages back and fault them in again each time (QABandit x1024 about 0.75x). A one-slot core
        # draws fresh arrays, which the single env keeps to start later episodes from.
        self._draw_buffers = (np.empty_like(self._ints), np.empty_like(self.obs)) if num_envs > 1 else None
        self._obs_flat = self.obs.reshape(-1)
        self._obs_steps = self.obs[:, -1]  # a view: the steps' cells (an ellipsis write costs less than obs[:, -1])
        self._obs_features = self.obs[:, : f * n].reshape(num_envs, n, f)  # a view: the features' cells
        # Each candidate's features with a last column of ones: an inspection writes the features
        # and the inspected flag of the candidate into the observation in one call.
        self._revealed = np.ones((num_envs, n, f + 1), dtype=np.float32)
        self.state = QAState(
            question=self._ints[:, -1],
            candidates=self._ints[:, self._candidates_column : self._candidates_column + n],
            target=self._counters[:, _TARGET],
            # The bandit shows every feature from the start: its features are the observation's cells.
            features=self._obs_features if self.bandit else self._revealed[:, :, :f],
            acts=self._act_codes,
            steps=self._counters[:, _STEPS],
            inspections=self._counters[:, _INSPECTIONS],
            answer=self._counters[:, _ANSWER],
            position=self._counters[:, _POSITION],
            outcome=self._counters[:, _OUTCOME],
        )
        self.state.features[...] = 0.0
        self._revealed_flat = self._revealed.reshape(-1, f + 1)  # a view: writes through it are the state's
        # Each answer's length in words (over LENGTH_SCALE, at most 1): shown for every candidate from the start.
        self._lengths = np.minimum(self.data.answer_lengths / LENGTH_SCALE, 1.0).astype(np.float32)
        # Constants of begin() and advance(), built once (both run at every step of a single env).
        data = self.data
        # The hash streams of begin(), in the order its columns use them: the question and the random
        # distractors of columns 1 .. n - 1 (the first n columns), the hard window, the order, then
        # (with a hint) the hint's noise draws; in uint64, as hash_keys mixes them (no conversion at each call).
        hint_streams = np.arange(0 if self.hint is None else 2 * n, dtype=np.int64)
        self._streams = np.concatenate(
            [[_QUESTION], np.arange(2, n + 1), [_WINDOW], np.arange(n + 1, 2 * n + 1), _HINT_STREAM + hint_streams]
        ).astype(np.uint64)
        self._text_prefixes = [f"  [{position}] " for position in range(n)]
        self._positions_list = list(range(n))
        # A candidate's features' text is one labelled piece per feature, joined: "  (overlap 0.12",
        # ", tfidf 0.30", ", ppmi 0.41)". Per feature, the piece's text around its number; and the
        # printf-style template of the whole, for a batch core's numbers (formatted as "{:.2f}" does).
        labels = [(", " if j else "  (") + name + " " for j, name in enumerate(self.feature_names)]
        closes = [""] * (f - 1) + [")"]
        self._features_template = "".join(label + "%.2f" + close for label, close in zip(labels, closes, strict=True))
        # The bandit's whole text before the end (every candidate is shown from the start) for a batch
        # core's numbers: its values are the question, then per candidate its answer and its features.
        self._number_template = "\n".join(
            ["Q: %s", *(prefix + "%s" + self._features_template for prefix in self._text_prefixes)]
        )
        # The values in that order, from the question, the answers, then the features candidate by candidate.
        order = [0, *chain.from_iterable([1 + i, *range(1 + n + f * i, 1 + n + f * (i + 1))] for i in range(n))]
        self._text_values = operator.itemgetter(*order)
        # The single env shows the text at every reset and step: its one-slot core draws its episodes'
        # texts with its begins (64 episodes ahead, a few numpy calls for all and a join per episode:
        # the texts of its questions and answers taken by pair index, its features' by code) and keeps
        # its episode's here (QADraws.texts' row, as a list). A batch core shows a slot's text only at a
        # few ends (info_text): it makes it from the slot's state when asked, so that its begins pay nothing.
        self._texts: list[list[str]] | None = None
        self._draws_texts = num_envs == 1
        if self._draws_texts:
            # The labelled pieces by code: the bandit's per candidate and feature (a feature's piece also
            # ends its candidate's line and begins the next's: its text is the join of its pieces in the
            # order of _piece_order), the MDP's per feature; each block _FEATURE_TEXTS with its label.
            blocks = np.arange(n * f).reshape(n, f) if self.bandit else np.broadcast_to(np.arange(f), (n, f))
            nexts = [f")\n{prefix}" for prefix in self._text_prefixes[1:]] + [")"]
            pieces = [
                labels[j] + text + (nexts[c] if self.bandit and j == f - 1 else closes[j])
                for c, j in map(divmod, range(int(blocks.max()) + 1), [f] * blocks.size)
                for text in _FEATURE_TEXTS.tolist()
            ]
            # Every text a draw takes, in one table (one take of all at once, by indices that are integers
            # until then): the answers by pair index, the questions, the pieces, then the bandit's "Q: " and
            # "\n  [0] " (what comes before its question and after it).
            answers = len(data.answers)  # (as many as the questions: one per pair)
            self._text_table = np.array(
                [*data.answers, *data.questions, *pieces, "Q: ", "\n" + self._text_prefixes[0]], dtype=object
            )
            self._questions_at = np.array([answers])
            self._piece_offsets = 2 * answers + blocks * len(_FEATURE_TEXTS)
            self._head_indices = 2 * answers + len(pieces) + np.arange(2)
            # The bandit's texts in its text's order, from "Q: " and "\n  [0] ", the question, the answers,
            # then the features' pieces candidate by candidate.
            order = [[3 + i, *range(3 + n + f * i, 3 + n + f * (i + 1))] for i in range(n)]
            self._piece_order = np.array([0, 2, 1, *chain.from_iterable(order)])
            # The MDP's lines: "Q: " and each position's prefix before the question and the answers.
            self._line_heads = np.array(["Q: ", *self._text_prefixes], dtype=object)
        self._total = np.array([len(data.questions)], dtype=np.uint64)
        self._step_scale = np.array([n + 1.0])  # the observation shows steps / (candidates + 1)
        # Operands of the same shape as the state's: a broadcast operand costs a one-slot call about twice.
        self._kept = np.broadcast_to(_KEPT, (num_envs, _COUNTERS)).copy()
        # The pairs of every group listed twice in a row (group by group, pairs of a group being
        # contiguous): the pairs that follow a question in its group, wrapping past the group's end,
        # are read on from the cell after the question's first listing.
        questions, starts, sizes = np.arange(len(data.questions)), data.group_starts, data.group_sizes
        self._group_pairs = np.empty(2 * len(questions), dtype=np.int64)
        self._group_pairs[questions + starts] = questions
        self._group_pairs[questions + starts + sizes] = questions
        # Per question, the hard window's arithmetic in uint64 (as the hashes): the other pairs of its
        # group, the cell after its first listing in _group_pairs, and its hard distractors.
        self._groups = np.stack(
            [np.maximum(sizes - 1, 1), questions + starts + 1, np.minimum(self.hard_distractors, sizes - 1)], axis=1
        ).astype(np.uint64)
        self._window = np.arange(n - 1, dtype=np.uint64)  # the distractor columns 1 .. n - 1, from 0
        self._earlier = np.tri(n, k=-1, dtype=bool)  # [i, j]: column j comes before column i
        self._cells = np.arange(num_envs) * n  # slot i's first cell in the flattened (num_envs, n) arrays
        self._first_cells = self._cells[:, None]  # grown by draw_begins() to the most episodes it drew
        self._start_flags = np.full(n, float(self.bandit), dtype=np.float32)  # the inspected flags at the start
        # Per slot, the cell of its act 0's outcome in the flattened per-slot integers (act a: plus a).
        acts = np.arange(int(self.single_action_space.n))
        self._act_cells = np.arange(num_envs) * self._ints.shape[1] + _COUNTERS + n - self.answer_offset
        # Per act code (4 * act + outcome): what a step adds to the kept counters (one step, one
        # inspection if it inspected) and sets (the answer, -1 for none, the position, the outcome);
        # the act's code the next time; its reward; whether it ends the episode.
        code_acts, outcomes = np.divmod(np.arange(_OUTCOMES * len(acts)), _OUTCOMES)
        self._step_rows = np.stack(
            [
                np.ones_like(outcomes),
                outcomes >= INSPECT,
                np.where(code_acts >= self.answer_offset, code_acts % n, -1),
                code_acts % n,
                outcomes,
                np.zeros_like(outcomes),
            ],
            axis=1,
        ).astype(np.int64)
        self._next_codes = _OUTCOMES * code_acts + _AGAIN[outcomes]
        self._code_rewards = np.array([0.0, 1.0, -self.inspect_cost, -self.inspect_cost])[outcomes]
        self._code_ends = outcomes != INSPECT
        self._allowed = np.arange(_OUTCOMES * len(acts)) % _OUTCOMES != REPEAT  # action_masks() per code
        # In the flattened observations: slot i's first cell, and per act the cells an inspection
        # writes (the candidate's features, then its inspected flag); an answer writes nothing, so
        # its cells are the steps cell, which advance() writes after them.
        self._obs_cells = np.repeat(np.arange(num_envs)[:, None] * width, f + 1, axis=1)  # (no broadcast: see _kept)
        self._act_obs_cells = np.full((len(acts), f + 1), width - 1)
        if not self.bandit:
            self._act_obs_cells[:n, :f] = np.arange(n)[:, None] * f + np.arange(f)
            self._act_obs_cells[:n, f] = f * n + np.arange(n)
        # Per slot, what text() keeps of its episode (begin() drops a restarted slot's), and the per-slot
        # integers it reads: the counters and (but in the bandit, whose candidates are all shown) the
        # inspections' codes.
        self._text_ints = self._ints[:, : _COUNTERS + (0 if self.bandit else n)]
        self._text_parts: dict[int, _TextParts] = {}
        # Per slot, its text as last made (a one-slot core's drawn at its start), until its state changes:
        # advance() drops every slot's, begin_drawn() a restarted slot's. The single env asks for the
        # text at every reset and step (and render() again): a reset's is the drawn one, made by no call.
        self._text_now: dict[int, str] = {}
        self._start_codes = self._start[_COUNTERS : _COUNTERS + n].tolist()  # (the MDP's inspections': none made)
        # The bandit shows every candidate as inspected from the start; its flags never change.
        self.obs[:, f * n : (f + 1) * n] = self.bandit

    @property
    def action_meanings(self) -> list[str]:
        """What each action does, e.g. ``["INSPECT(0)", ..., "ANSWER(0)", ...]``."""
        inspect = [] if self.bandit else [f"INSPECT({i})" for i in range(self.candidates)]
        return inspect + [f"ANSWER({i})" for i in range(self.candidates)]

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a question per slot, its true answer and distractors (hard first), in random order."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> QADraws:
        """Everything an episode's start draws from its key, for each of ``keys`` (row i from keys[i] alone).

        The question (the true answer's pair), the hard distractors (a window of its group) and random
        ones (repeated answers drawn again), the order, the features and hint, the starting observation.
        """
        data, n, m, f = self.data, self.candidates, len(keys), len(self.feature_names)
        # One hash per (episode, stream), in the order of _streams (one vectorised call).
        hashes = hash_keys(keys[:, None], self._streams)
        # Column 0 is the question (the true answer's pair); columns 1 .. n - 1 random distractors.
        # The pair indices (below 2**63) viewed as int64: numpy converts uint64 indices at every indexing.
        chosen = (hashes[:, :n] % self._total).view(np.int64)
        if self.hard_distractors:
            # Hard distractors: a window of the question's group (topic file or conversation) starting at
            # a random offset after it, so they are distinct pairs and never the question's own.
            group = self._groups.take(chosen[:, 0], axis=0)
            others, after, hard = group[:, 0:1], group[:, 1:2], group[:, 2:3]
            window = self._group_pairs.take((hashes[:, n : n + 1] % others + self._window) % others + after)
            np.copyto(chosen[:, 1:], window, where=self._window < hard)
        # A candidate whose answer repeats the true one or an earlier candidate's (equal words) is
        # drawn again at random until none does (the split has at least `candidates` distinct answers).
        # One sort finds the episodes with a repeat (most have none); only they are looked at again.
        ordered = data.answer_ids.take(chosen)
        ordered.sort(axis=1)  # in place (a copy of the ids): only whether one repeats is asked here
        repeated = ordered[:, 1:] == ordered[:, :-1]
        if np.count_nonzero(repeated):  # a third of any()'s cost
            self._redraw_repeats(np.flatnonzero(repeated.any(axis=1)), chosen, keys)
        # The hashes' top 53 bits, whose uniforms (hashes_to_uniform) order the candidates and make the hint.
        top = hashes[:, n + 1 :] >> _TOP_BITS
        order = top[:, :n].argsort(axis=1)
        right = order == _ZERO  # where the order put column 0, the true answer
        candidates = chosen.take(order + self._row_cells(m))  # take() without an axis: flat indices
        # The integers' rows, each column written once: the counters and the inspections' codes at the
        # start, the answers' (4 * act + WRONG, and RIGHT at the target), the candidates, the question.
        buffers = self._draw_buffers if self._draw_buffers is not None and m <= self.num_envs else (None, None)
        answers = self._start[self._acts_column + n : self._candidates_column] + right
        ints = np.concatenate(
            [
                np.broadcast_to(self._start[: self._acts_column + n], (m, self._acts_column + n)),
                answers,
                candidates,
                chosen[:, :1],
            ],
            axis=1,
            out=None if buffers[0] is None else buffers[0][:m],
        )
        ints[:, _TARGET] = order.argmin(axis=1)
        # The features and the hint: where an inspection reads them (the bandit's: shown from the start).
        features = data.features(chosen[:, :1], candidates)
        if self.hint is not None:
            features = np.concatenate([features, self._hints(top[:, n:], right)[:, :, None]], axis=2, dtype=np.float32)
        if self.bandit:
            revealed, shown = np.empty((m, 0), dtype=np.float32), features
        else:  # the features, then the inspected flag's 1; shown as zeros signed as the features until inspected
            revealed = np.concatenate([features, np.ones((m, n, 1), dtype=np.float32)], axis=2)
            shown = features * _ZERO_FLOAT
        texts = np.empty((m, 0), dtype=object)
        if self._draws_texts:  # the texts of the question, the answers and the features' labelled pieces
            # Their indices in _text_table, put in order as integers: each text is copied once, by one take.
            question = chosen[:, :1] + self._questions_at
            pieces = _feature_codes(features, self._piece_offsets).reshape(m, n * f)
            if self.bandit:  # the text at the start: every piece in its order, joined
                heads = np.broadcast_to(self._head_indices, (m, 2))
                indices = np.concatenate([heads, question, candidates, pieces], axis=1)
                ordered = self._text_table.take(indices.take(self._piece_order, axis=1))
                starts = list(map("".join, ordered.tolist()))
                texts = np.concatenate([np.array(starts, dtype=object)[:, None], ordered[:, 3 :: f + 1]], axis=1)
            else:  # the lines (object additions: each a string concatenation, in C), joined
                every = self._text_table.take(np.concatenate([question, candidates, pieces], axis=1))
                lines = self._line_heads + every[:, : n + 1]
                starts = list(map("\n".join, lines.tolist()))
                texts = np.concatenate(
                    [np.array(starts, dtype=object)[:, None], every[:, 1 : n + 1], lines, every[:, n + 1 :]], axis=1
                )
        # The observation: the features' cells, the inspected flags (the bandit's all set), the
        # candidates' lengths, zero steps.
        obs = np.concatenate(
            [
                shown.reshape(m, f * n),
                np.broadcast_to(self._start_flags, (m, n)),
                self._lengths.take(candidates),
                np.broadcast_to(_ZERO_FLOAT, (m, 1)),
            ],
            axis=1,
            out=None if buffers[1] is None else buffers[1][:m],
        )
        return QADraws(ints, obs, revealed, texts)

    def begin_drawn(self, slots: np.ndarray, drawn: QADraws) -> None:
        """Start episodes in ``slots`` from ``drawn``'s rows (row i for slots[i]): the state's writes alone."""
        rows = slot_index(slots)
        self._ints[rows] = drawn.ints
        self.obs[rows] = drawn.obs
        if not self.bandit:  # (the bandit's features are its observation's cells)
            self._revealed[rows] = drawn.revealed
        if self._text_parts or self._text_now:  # a restarted slot's text is made anew
            if len(slots) == self.num_envs:  # every slot restarts (slots are distinct): one call each
                self._text_parts.clear()
                self._text_now.clear()
            else:
                for slot in slots.tolist():
                    self._text_parts.pop(slot, None)
                    self._text_now.pop(slot, None)
        if self._draws_texts:  # (a list: text() reads it as one)
            self._texts = drawn.texts.tolist()
            self._text_now[0] = self._texts[0][0]  # the text at the start (a one-slot core's one slot)

    def _row_cells(self, m: int) -> np.ndarray:
        """``(m, 1)``: row i's first cell in a flattened ``(m, candidates)`` array."""
        if len(self._first_cells) < m:
            self._first_cells = np.arange(m)[:, None] * self.candidates
        return self._first_cells[:m]

    def _redraw_repeats(self, rows: np.ndarray, chosen: np.ndarray, keys: np.ndarray) -> None:
        """Redraw, in place, each candidate of ``rows`` whose answer repeats an earlier column's, until none does.

        Args:
            rows: the rows of ``chosen`` with a repeated answer.
            chosen: ``(m, candidates)`` pair indices, the true answer's in column 0 (never redrawn).
            keys: the rows' episode keys: round ``r``'s redraw of column ``j`` is its own hash counter.
        """
        data = self.data
        answers = data.answer_ids.take(chosen)  # kept equal to data.answer_ids[chosen]
        for round_ in range(1 << 62):
            ids = answers[rows]
            clash = ((ids[:, :, None] == ids[:, None, :]) & self._earlier).any(axis=2)
            which, columns = np.nonzero(clash)
            if not which.size:
                break
            clashing = rows[which]
            drawn = random_integers(keys[clashing], len(data.questions), _REDRAW, round_, columns)
            chosen[clashing, columns] = drawn
            answers[clashing, columns] = data.answer_ids.take(drawn)
            rows = rows[clash.any(axis=1)]  # only a row with a redrawn candidate can repeat again

    def _hints(self, top: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``(len(top), candidates)``: 1 where ``right`` (the true answer), else 0, plus noise, clipped to +-1.

        The Gaussian noise (standard deviation ``answer_hint``) is a Box-Muller draw from the top 53
        bits of the ``2 * candidates`` hashes of each episode's hint streams.
        """
        n = self.candidates
        # The uniforms u1, u2 as hashes_to_uniform gives them (53-bit integers convert to float64 exactly).
        noise = np.sqrt(np.log1p(top[:, :n] * _MINUS_UNIT) * _MINUS_TWO) * np.cos(top[:, n:] * _TWO_PI_UNIT)
        hint = right + self._hint_scale * noise
        return hint.clip(_MINUS_ONE, _PLUS_ONE)  # the method: np.clip's dispatch costs more

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """INSPECT(i) reveals candidate i's features (again: ends the episode); ANSWER(i) ends it."""
        self._text_now.clear()  # every slot's text changes
        acts = self._act_cells + actions  # each slot's act's cell in the flattened per-slot integers
        # The act codes 4 * act + outcome: an answer is WRONG (0) or RIGHT (1), an inspection INSPECT (2) or REPEAT (3).
        codes = self._ints_flat.take(acts)
        if not self.bandit:  # (an answer's outcome stays: the bandit's acts change nothing)
            self._ints_flat[acts] = self._next_codes.take(codes)  # an inspected candidate's inspection now repeats
        # A whole-array write of new values: numpy's in-place operators cost a one-slot call about twice.
        counters = self._counters * self._kept + self._step_rows.take(codes, axis=0)
        self._counters[...] = counters
        # The observation: an inspected candidate's features and flag (the bandit shows them all
        # from the start; showing them again changes nothing), the steps.
        if not self.bandit:
            cells = self._obs_cells + self._act_obs_cells.take(actions, axis=0)
            self._obs_flat[cells] = self._revealed_flat.take(self._cells + counters[:, _POSITION], axis=0)
        self._obs_steps[...] = counters[:, _STEPS] / self._step_scale
        return self._code_rewards.take(codes), self._code_ends.take(codes)

    def observe(self) -> np.ndarray:
        """Per slot: inspected candidates' features (zeros elsewhere), inspected flags, answer lengths, steps."""
        return self.obs.copy()

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The observation with the chosen action appended one-hot (what an inspection shows is unknown before)."""
        one_hot = np.eye(int(self.single_action_space.n), dtype=np.float32)[actions]
        return np.concatenate([observations, one_hot], axis=1, dtype=np.float32)

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """``correct`` (R@1), ``inspections``; also the ``target`` and ``answer`` positions (-1: none)."""
        # take() copies: the values are the caller's. Its columns as the rows of its transpose: a row's
        # index costs a fraction of a column's slice (each the same strided view of the copy).
        columns = self._counters.take(slots, axis=0).T
        return {
            "correct": _CORRECT.take(columns[_OUTCOME]),
            "inspections": columns[_INSPECTIONS],
            "target": columns[_TARGET],
            "answer": columns[_ANSWER],
        }

    def text(self, slot: int) -> str:
        """The question, every candidate (with its features once inspected), and at the end the choice."""
        # The single env asks for this text at every step: the text stays until the state changes, an
        # episode's lines are made once and a candidate's features shown once, when it is first seen
        # inspected (features never change within an episode, and a candidate once inspected stays so
        # until the next begin()).
        now = self._text_now.get(slot)
        if now is not None:
            return now
        # The slot's counters and (but in the bandit) inspections' codes at once (a list: each numpy
        # scalar read costs more than the whole row).
        ints = self._text_ints[slot].tolist()
        _, _, answer, position, outcome, true = ints[:_COUNTERS]
        parts = self._text_parts.get(slot)
        if parts is None:
            parts = self._text_parts[slot] = self._start_text(slot)
        if not self.bandit:  # (the bandit's candidates are all shown from the start, with their features)
            codes = ints[_COUNTERS:]
            if codes != parts.codes:  # (one list comparison, in C)
                # The newly inspected candidates' lines get their features: their drawn pieces joined, or
                # (a batch core's episode) their numbers read and formatted now.
                width, pieces = len(self.feature_names), parts.pieces
                for candidate in compress(self._positions_list, map(operator.ne, codes, parts.codes)):
                    if pieces is None:
                        numbers = tuple(self.state.features[slot, candidate].tolist())
                        parts.lines[candidate + 1] += self._features_template % numbers
                    else:
                        parts.lines[candidate + 1] += "".join(pieces[width * candidate : width * (candidate + 1)])
                parts.codes, parts.body = codes, "\n".join(parts.lines)
        if outcome == INSPECT:
            now = parts.body
        else:
            if outcome == REPEAT:
                said = f"inspected [{position}] again, no answer"
            else:
                said = f"answered [{answer}] {parts.answers[answer]!r}"
            now = f"{parts.body}\n-> {said}; true answer [{true}] {parts.answers[true]!r}"
        self._text_now[slot] = now
        return now

    def _start_text(self, slot: int) -> _TextParts:
        """The slot's episode's text at its start: from its texts drawn with the begin, or made from its state."""
        n = self.candidates
        if self._texts is not None:
            texts = self._texts[slot]
            if self.bandit:  # its text at the start, then its answers
                return _TextParts([], [], texts[0], None, texts[1:])
            answers, lines, pieces = texts[1 : n + 1], texts[n + 1 : 2 * n + 2], texts[2 * n + 2 :]
            body = texts[0]
        else:
            data, ints = self.data, self._ints[slot].tolist()
            # map() iterates in C: a Python loop over the candidates costs several times more.
            answers = list(map(data.answers.__getitem__, ints[self._candidates_column : -1]))
            question, pieces = data.questions[ints[-1]], None
            if self.bandit:
                numbers = self.state.features[slot].ravel().tolist()
                body = self._number_template % self._text_values([question, *answers, *numbers])
            else:
                lines = [f"Q: {question}", *map(operator.add, self._text_prefixes, answers)]
                body = "\n".join(lines)
        if self.bandit:  # every candidate shown: no lines to update later
            return _TextParts([], [], body, None, answers)
        return _TextParts(lines, self._start_codes, body, pieces, answers)

    def action_masks(self) -> np.ndarray | None:
        """INSPECT(i) is masked once candidate i was inspected; answers are always allowed."""
        if self.bandit:
            return None
        return self._allowed.take(self._act_codes)  # an answer never repeats


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Answers the true candidate at once. Uses hidden state: it reads each episode's label from the env.

    No policy can do better: reward 1 on the first step, with no inspection cost, is the largest return.
    """
    core = cast(QACore, env.unwrapped.core)
    return core.state.target + core.answer_offset


def tfidf_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Inspects every candidate in order, then answers the one with the largest TF-IDF cosine.

    The classic retrieval baseline (Lowe et al. 2015's TF-IDF row); it reads only the observation.
    """
    core = cast(QACore, env.unwrapped.core)
    n, width = core.candidates, len(core.feature_names)
    features = np.asarray(observations)[:, : width * n].reshape(len(observations), n, width)
    best = features[:, :, FEATURES.index("tfidf")].argmax(axis=1) + core.answer_offset
    if core.bandit:
        return best
    uninspected = np.asarray(observations)[:, width * n : (width + 1) * n] < 0.5
    return np.where(uninspected.any(axis=1), uninspected.argmax(axis=1), best)


class QAEnv(CoreEnv):
    """Pick the true reply to a question among N candidates, inspecting candidates at a small cost.

    ## Description

    Retrieval question answering as answer selection (the "R10@1" response-selection protocol of
    the Ubuntu Dialogue Corpus, Lowe et al. 2015), made sequential. An episode is a question (a
    message) with ``candidates`` candidate answers in random order: its true reply and
    ``candidates - 1`` distractors, up to ``hard_distractors`` of them from the same topic file
    (chatterbot) or conversation (chitchat) and the rest drawn at random from the split. No two
    candidates have the same words. The agent sees nothing of a candidate until it inspects it,
    which reveals the candidate's match features with the question at a cost; it ends the episode
    by answering a candidate.

    Data (``pairs=``):

    - ``"chatterbot"`` (default): consecutive statements of the English conversations of
      ``chatterbot-corpus`` (BSD licence), in 21 topic files; split 4:1 by conversation
      (807 training and 223 test questions).
    - ``"chitchat"``: consecutive messages of the Chit Chat Challenge chats (MIT licence; a message
      is one sender's utterances joined); split 9:1 by conversation (about 110,000 training and
      12,000 test questions; its first build takes about 18 s of CPU, then it is read from the
      disk cache in under a second).
    - ``"both"``: the two together, each split by its own rule.
    - a path to your own ``.csv`` (with a header) or ``.jsonl`` file with columns ``question`` and
      ``answer`` (names set by ``question_column`` and ``answer_column``): split 4:1 by question;
      every pair is its own group, so all distractors are random.

    Pairs are deduplicated: a question (compared by its words) keeps its first answer, and test
    questions that also occur in the training split are dropped, so test questions are unseen.
    The encoded pairs are cached on disk (``$NLP_ENVS_CACHE``, default ``~/.cache/nlp-envs``; chitchat
    takes about 120 MB there), keyed by the package version or by the file's content, so an edited
    file is built again (:mod:`nlp_envs.data.qa_pairs`).

    ## Action Space

    ``Discrete(2 * candidates)``: ``i < candidates`` inspects candidate ``i``; ``candidates + i``
    answers candidate ``i`` (``env.unwrapped.core.action_meanings``). With ``bandit=True``,
    ``Discrete(candidates)``: action ``i`` answers candidate ``i``.

    ## Observation Space

    ``Box(-1, 1, ((F + 2) * candidates + 1,), float32)``, where ``F`` is the number of features per
    candidate: 3, or 4 with ``answer_hint``:

    | Index                      | Observation                                                      |
    |----------------------------|------------------------------------------------------------------|
    | Fi, Fi + 1, Fi + 2         | candidate i's word overlap, TF-IDF cosine, PPMI cosine (or 0)    |
    | Fi + 3                     | with ``answer_hint``: candidate i's hint (or 0)                  |
    | F * candidates + i         | 1 if candidate i was inspected, else 0                           |
    | (F + 1) * candidates + i   | candidate i's length in words / 50, at most 1 (always shown)     |
    | (F + 2) * candidates       | steps taken divided by ``candidates + 1``                        |

    Word overlap is the Jaccard index of the question's and the answer's word sets; TF-IDF cosine
    uses the IDF of the training split's texts; PPMI cosine is the cosine of the mean PPMI + SVD
    word vectors (32 dimensions, the training split's 2,000 most frequent words,
    :func:`nlp_envs.language_model.ppmi_vectors`). A candidate's features are 0 until it is
    inspected; in the bandit all are shown at once. The candidates' lengths are seen from the
    start, as a reader sees a list of replies before reading them.

    With ``answer_hint=s`` each candidate has a fourth feature, its *hint*: 1 for the true answer
    and 0 for a distractor, plus Gaussian noise of standard deviation ``s`` (drawn from the episode
    key), clipped to +-1. It stands for a strong learned matcher (a trained re-ranker) and makes the
    answer readable from the observation: with ``s = 0.25`` and 4 candidates the candidate of the
    largest hint is the true one in 99% of test episodes (0.992 R4@1 over 2,000). It is for easy
    presets, where a learner can be checked against the oracle.

    ## Rewards

    Answering the true candidate pays 1, another candidate 0; every inspection costs
    ``inspect_cost`` (0.01: inspecting all ten candidates costs 0.1).

    ## Starting State

    A question drawn uniformly (with replacement) from the ``split``, its candidates uninspected.

    ## Episode End

    1. Termination: an answer, or inspecting a candidate already inspected (no answer: reward 0
       less the costs).
    2. Truncation: ``max_episode_steps``. Every episode terminates by step ``candidates + 1``
       (1 in the bandit), so the registered limit is one more and never cuts an episode short;
       with another ``candidates``, pass ``max_episode_steps=candidates + 2``.

    ## Information

    ``info["text"]`` (at reset and every step; in the vector env only at reset and at the end,
    with ``info_text=True``): the question, the numbered candidates (inspected ones with their
    features) and at the end the answer chosen and the true one. At the end also the metrics
    ``correct`` (R@1: 1 or 0) and ``inspections``, and the ``target`` and ``answer`` positions
    (``answer`` -1: none given).

    ``env.action_masks()`` masks inspecting a candidate already inspected.

    ## Afterstate

    The observation with the action appended one-hot: what an inspection shows is unknown before.

    ## Reference policies

    ``random`` (uniform over the allowed acts); ``tfidf`` (inspects every candidate, then answers
    the best TF-IDF cosine: the classic baseline; it ignores the hint); ``oracle`` (hidden state:
    answers the true candidate at once, return 1, the maximum). Mean return (R@1) on the test
    split, 1,000 episodes, seed 0 (``python benchmarks/reference_policies.py --envs QA``):

    | policy      | QA-v0        | QABandit-v0  | QAEasy-v0 (R4@1) |
    |-------------|--------------|--------------|------------------|
    | ``random``  | +0.09 (0.10) | +0.11 (0.11) | +0.26 (0.26)     |
    | ``tfidf``   | +0.21 (0.31) | +0.31 (0.31) | +0.45 (0.45)     |
    | ``oracle``  | +1.00 (1.00) | +1.00 (1.00) | +1.00 (1.00)     |

    With ``pairs="chitchat"``: ``random`` 0.10, ``tfidf`` 0.30, ``oracle`` 1.00 R@1 in both
    QA-v0 and QABandit-v0. ``random`` inspects 0.85 candidates on average in QA-v0; ``tfidf``
    inspects all ten (return R@1 - 0.1). Replies share few words with their questions, and the
    hard distractors come from the same topic or chat: the lexical features leave most of the
    gap to the oracle, which is the question this env asks of a learner (DQN on the 4-candidate
    bandit without the hint: about 0.52 R4@1, normalised 0.36, after 20,000 steps). On QAEasy-v0,
    whose hint makes the answer readable, the project's ``dqn`` agent (default hyper-parameters,
    16 train-split envs, 5,000 steps) scores 0.996 R4@1 on the test split, normalised 0.99.

    As orientation (different data, same protocol), R10@1 on the Ubuntu Dialogue Corpus:
    random 0.10, TF-IDF 0.49, dual-encoder LSTM 0.55.

    ## Arguments

    ``pairs="chatterbot"``, ``question_column="question"``, ``answer_column="answer"``,
    ``split="train"`` (``"test"`` draws unseen questions: evaluate with it), ``candidates=10``,
    ``hard_distractors=None`` (``(candidates - 1) // 2``: 4 of 9), ``bandit=False`` (all
    features at once, answer only, one step), ``inspect_cost=0.01``, ``answer_hint=None`` (the
    noise of the hint feature; None: no hint), ``render_mode=None`` or ``"ansi"``.

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/QA-v0", candidates=3, hard_distractors=1, render_mode="ansi")
    >>> env.observation_space, env.action_space
    (Box(-1.0, 1.0, (16,), float32), Discrete(6))
    >>> observation, info = env.reset(seed=11)
    >>> print(info["text"])
    Q: It is a pleasure to meet you.
      [0] Not much.
      [1] Thank you. You too.
      [2] What do you want to know?
    >>> observation, reward, terminated, truncated, info = env.step(1)  # inspect candidate 1
    >>> reward, terminated, observation[9:12].tolist(), info["action_mask"].tolist()
    (-0.01, False, [0.0, 1.0, 0.0], [True, False, True, True, True, True])
    >>> print(env.render().splitlines()[2])
      [1] Thank you. You too.  (overlap 0.11, tfidf 0.10, ppmi 0.39)
    >>> observation, reward, terminated, truncated, info = env.step(3 + 1)  # answer candidate 1
    >>> reward, terminated, info["correct"], info["inspections"]
    (1.0, True, np.float64(1.0), np.int64(1))
    >>> print(info["text"].splitlines()[-1])
    -> answered [1] 'Thank you. You too.'; true answer [1] 'Thank you. You too.'

    Registered ids: ``nlp_envs/QA-v0`` (10 candidates, 4 hard), its contextual-bandit preset
    ``nlp_envs/QABandit-v0`` (``bandit=True``) and ``nlp_envs/QAEasy-v0`` (the bandit with 4
    candidates, none hard, and ``answer_hint=0.25``: R4@1). Your own
    data: ``gym.make("nlp_envs/QA-v0", pairs="faq.csv")``.

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/QA-v0", num_envs=N, vectorization_mode="vector_entry_point")`` gives
    :class:`QAVectorEnv`, the same core over N slots (see :mod:`nlp_envs.core` for seeding and
    autoreset).

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = QACore


class QAVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`QAEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = QACore
    reference_policies: ClassVar[dict[str, Any]] = {
        "random": random_policy,
        "oracle": oracle_policy,
        "tfidf": tfidf_policy,
    }
