"""Recommendation: a session with a MovieLens-grounded user whose interests drift and tire."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np
from gymnasium import spaces

from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    check_bool,
    check_choice,
    check_fits_slots,
    check_float,
    check_int,
    count_nonzero,
    hash_keys,
    hashes_to_uniform,
    numpy_c_function,
    slot_index,
)
from nlp_envs.data.movielens import check_sources
from nlp_envs.data.simulator import FACTOR_BOUND, Simulator, build_simulator
from nlp_envs.policies import random_policy

REWARDS = ("engagement", "click")

# The user model, documented in RecommendationEnv's docstring. Fixed, so that scores compare.
CLICK_BIAS = -3.5  # click logit of an item of appeal 0 and affinity 0 to a rested user
APPEAL_WEIGHT = 4.0  # click logit per unit of appeal (popularity percentile)
AFFINITY_WEIGHT = 1.0  # click logit per unit of affinity (standardised taste match)
FATIGUE_WEIGHT = 3.0  # click logit lost per unit of fatigue with the item's genres
ENGAGEMENT_BASE = 1.0  # engagement of a click on an item of quality 0.5 and affinity 0
QUALITY_ENGAGEMENT = 0.3  # engagement per unit of quality
AFFINITY_ENGAGEMENT = 0.3  # engagement per unit of affinity
STEP_COST = 1.0  # budget that every step spends
QUALITY_REFUND = 4.0  # budget that a click gives back per unit of quality above QUALITY_THRESHOLD
QUALITY_THRESHOLD = 0.75  # quality below which a click costs budget on top of the step
FATIGUE_DECAY = 0.8  # fraction of genre fatigue (and of the history summary) kept per step
DRIFT = 0.1  # how far a click pulls the user's interests toward the clicked item
TASTE_NOISE = 0.5  # noise on the real user's factors, in units of the population's std

# Hard upper bounds (documented in RecommendationEnv's Arguments), besides the memory estimate.
MAX_STEPS = 10_000  # a session of more steps has no meaning for the user model (fatigue saturates long before)
MAX_CANDIDATES = 65_536  # candidates are drawn with 16 bits each; no catalog here is that large

PRICE_SAMPLE = 256  # catalog items (a fixed random subset) over which the oracle prices budget
PRICE_ITERATIONS = 4  # Dinkelbach iterations of the oracle's price

_BLOCK = 16  # steps whose candidates are drawn in one call (the values do not depend on it)
# A one-slot core (the single env) draws up to this many steps a block, of at most _SESSION_CANDIDATES
# candidates (never fewer steps than _BLOCK): a default session's whole candidates and clicks at its
# begin, which the single env draws 64 sessions ahead in one call (so the bound keeps those draws small).
_SESSION_BLOCK, _SESSION_CANDIDATES = 64, 1024
_OFFER_LINES = 1 << 16  # text() keeps the offer's line of every (candidate, item) where there are at most this many
_CANDIDATE_BITS = 16  # each candidate is drawn from 16 bits of a step's hash words, the click from 32
# Operands of the per-step numpy calls are one-element arrays, not Python scalars: numpy resolves
# a Python scalar's type at every call, which costs a one-slot call (the single env) about half again.
_ONE, _ZERO = np.array([1]), np.array([0.0])
_CANDIDATE_SHIFT, _HALF, _TWO_TO_MINUS_32 = np.array([_CANDIDATE_BITS]), np.array([0.5]), np.array([2.0**-32])
_MINUS_TWO, _TWO_PI = np.array([-2.0]), np.array([2.0 * np.pi])


def _bit_count(bits: np.ndarray, width: int) -> np.ndarray:
    """The set bits of each of ``bits`` (non-negative int64 below ``2**width``), as int64.

    numpy's C ``bitwise_count`` (numpy 2) where it has one: a seventh of shifting each bit out and summing.
    """
    if _bitwise_count is None:
        return ((bits[:, None] >> np.arange(width)) & _ONE).sum(axis=1)
    return _bitwise_count(bits).astype(np.int64)


_bitwise_count = getattr(np, "bitwise_count", None)
_einsum = numpy_c_function("c_einsum", np.einsum)  # called as np.einsum(..., optimize=False) calls it


class _Begins(NamedTuple):
    """What :meth:`RecommendationCore.draw_begins` draws from sessions' keys: one row per session."""

    keys: np.ndarray  # (E,) uint64: the sessions' keys (their later blocks of draws come from them)
    start: np.ndarray  # (E, width): the first state row (full budget, the drawn interests, the constant 1)
    user: np.ndarray  # (E,) int64: the real user drawn
    candidates: np.ndarray  # (E, BLOCK, K) int64: the candidates of steps 0 .. BLOCK - 1
    clicks: np.ndarray  # (E, BLOCK): the click thresholds of those steps


class RecommendationCore(TaskCore):
    """Batched Recommendation dynamics; see :class:`RecommendationEnv` for the documentation.

    The user state of every slot is one row of ``self.state`` (``G`` genres, ``d`` factors); its
    visible part, the observation's user block, comes first:

    ==================  ========================================================  ========
    columns             meaning                                                   visible
    ==================  ========================================================  ========
    0                   budget left, as a fraction of ``budget``                  yes
    1                   steps taken / ``max_steps``                               yes
    2                   clicks / ``max_steps``                                    yes
    3 .. 3+d            history summary: decayed mean of clicked items' factors   yes
    3+d .. 3+d+G        fatigue per genre, in ``[0, 1]``                          yes
    3+d+G .. 3+2d+G     the user's interests (scaled factors)                     no
    3+2d+G              the constant 1 (carries the items' intercepts)            no
    ==================  ========================================================  ========

    Every quantity of the user model is then a table lookup and a dot product with that row:
    ``readout[item] . state[3+d:]`` gives the click logit and the engagement of a click, and a
    step updates ``state <- state * decay + change[item if click else none]`` and, on a click, pulls
    the interests toward the item (``taste <- taste + DRIFT * (factors - taste)``).
    """

    env_id = "nlp_envs/Recommendation-v0"
    metric_names = ("clicks", "ctr", "engagement", "session_length", "genre_coverage")

    def __init__(
        self,
        num_envs: int,
        *,
        catalog: str = "ml-100k",
        ratings: str | None = None,
        num_candidates: int = 10,
        max_steps: int = 50,
        budget: float = 20.0,
        reward: str = "engagement",
        min_item_ratings: int = 20,
        info_titles: bool | None = None,
    ) -> None:
        super().__init__(num_envs)
        env = self.env_id
        check_choice(env, "reward", reward, REWARDS)
        num_candidates = check_int(env, "num_candidates", num_candidates, 2, MAX_CANDIDATES)
        max_steps = check_int(env, "max_steps", max_steps, 1, MAX_STEPS)
        min_item_ratings = check_int(env, "min_item_ratings", min_item_ratings, 1)
        budget = check_float(env, "budget", budget, 0.0, low_open=True)
        info_titles = check_bool(env, "info_titles", info_titles, optional=True)
        # Steps drawn a block: a few for many slots (a block drawn at a begin serves a fraction of
        # a session), the session itself for one slot (its next block would cost a step that call).
        session_block = min(max_steps, _SESSION_BLOCK, max(_BLOCK, _SESSION_CANDIDATES // num_candidates))
        self._block = block = _BLOCK if self.num_envs > 1 else session_block
        # Per slot: the session's history (max_steps items, clicks, engagements), a block of
        # candidates and click draws, the user row.
        check_fits_slots(
            env,
            f"max_steps={max_steps}, num_candidates={num_candidates}",
            17.0 * max_steps + 8.0 * block * (num_candidates + 1) + 16.0 * num_candidates + 1024,
            self.num_envs,
        )
        if not isinstance(catalog, str) or not (ratings is None or isinstance(ratings, str)):
            raise ValueError(
                f"{self.env_id}: catalog and ratings must be strings (a dataset name or file paths), "
                f"got {type(catalog).__name__} and {type(ratings).__name__}."
            )
        check_sources(catalog, ratings, env)  # before any file is read
        sim = build_simulator(catalog, ratings, min_item_ratings)
        if num_candidates > sim.num_items:
            raise ValueError(
                f"{self.env_id}: num_candidates={num_candidates} exceeds the {sim.num_items} catalog items "
                f"rated at least {min_item_ratings} times; lower num_candidates or min_item_ratings."
            )
        if sim.num_items > num_candidates << _CANDIDATE_BITS:
            raise ValueError(
                f"{self.env_id}: the catalog has {sim.num_items} items, more than num_candidates * 65536; "
                "raise num_candidates or min_item_ratings."
            )
        self.sim = sim
        self.reward = reward
        self.num_candidates = k = num_candidates
        self.max_steps = max_steps
        self.budget_start = budget
        self.info_titles = self.num_envs == 1 if info_titles is None else info_titles
        # The titles, then "" at index -1: the title of the row shown (-1, none, at the start).
        self._shown_titles = np.append(sim.titles, np.array([""], dtype=object))
        # For text(): the titles as a list (it indexes faster than an object array), the offer's lines
        # as one format string (a title is an argument, never part of the format) and the header's end.
        self._title_list = sim.titles.tolist()
        self._offer_format = "".join(f"\n  [{j}] {{}}" for j in range(num_candidates))
        # The offer's line of every (candidate, item), built at the first text() where there are at most
        # _OFFER_LINES: joining prepared lines costs a third of formatting ten titles.
        self._offer_lines: list[list[str]] | None = None
        # The session's lines, "  7. Title (year) [Genres] -> outcome": each step's number and each item's label.
        self._line_starts = [f"{t + 1:3d}. " for t in range(max_steps)]
        self._line_labels = [f"{label} -> " for label in sim.labels]
        self._budget_text = f" (time budget {budget:g})"
        genres, dim = len(sim.genre_names), sim.dim
        self.user_size = 3 + dim + genres
        self._hidden = 3 + dim  # the first column the readout reads
        self._tables(sim, genres, dim)

        self.item_size = sim.features.shape[1]
        # The items' features as the observation holds them (float32): a gather of half the bytes, the same values.
        self._features = sim.features.astype(np.float32)
        user_low = np.concatenate([np.zeros(3), np.full(dim, -FACTOR_BOUND), np.zeros(genres)])
        user_high = np.concatenate([np.ones(3), np.full(dim, FACTOR_BOUND), np.ones(genres)])
        item_low = np.concatenate([np.zeros(3 + genres), np.full(dim, -FACTOR_BOUND)])
        item_high = np.concatenate([np.ones(3 + genres), np.full(dim, FACTOR_BOUND)])
        self.single_observation_space = spaces.Box(
            np.concatenate([user_low, np.tile(item_low, k)]).astype(np.float32),
            np.concatenate([user_high, np.tile(item_high, k)]).astype(np.float32),
            dtype=np.float32,
        )
        self.afterstate_space = spaces.Box(
            np.concatenate([user_low, item_low]).astype(np.float32),
            np.concatenate([user_high, item_high]).astype(np.float32),
            dtype=np.float32,
        )
        self.single_action_space = spaces.Discrete(k)
        # Candidate j of a step is drawn from stratum j of the shuffled catalog: K distinct items.
        # Each step has ceil((K + 2) / 4) hash words: 32 bits for the click draw, then 16 per candidate.
        bounds = (np.arange(k + 1) * sim.num_items) // k
        self._stratum_low, self._stratum_width = bounds[:-1], np.diff(bounds)
        self._words = -(-(k + 2) // 4)
        self._block_words = np.arange(block * self._words) + 2 * sim.dim + 1
        self._begin_words = np.arange(2 * sim.dim + 1 + block * self._words)

        n, steps = self.num_envs, self.max_steps
        # Each slot's first cell in the flattened (num_envs, K) offer, (num_envs, BLOCK) block and
        # (num_envs, max_steps) history arrays: one slot's entry is then one integer index.
        # One slot's first offer cell is 0: its actions are their own cells (no addition, as slot_index's slice).
        self._offer_cells = np.arange(n) * k if n > 1 else None
        self._block_cells = np.arange(n) * block
        self._block_size = np.array([block])
        self._history_cells = np.arange(n) * steps
        self._no_click = np.array([len(self.change) - 1])  # the row of ``change`` of a step without a click
        self._last_step, self._budget_scale = np.array([steps - 1]), np.array([budget])
        self._budget_scalar = np.float64(budget)  # a row's budget (a numpy scalar) times this stays one
        # The slots' counters at the start of a session: steps 0, their first block cell, their first history
        # cell (one row each: a row is read by an integer index, cheaper than a column's slice); a plain step
        # adds ones of the same shape (numpy's fast path: no broadcasting).
        self._start_counters = np.stack([np.zeros(n, dtype=np.int64), self._block_cells, self._history_cells])
        self._counter_step = np.ones_like(self._start_counters)
        # How many more steps can advance every slot's counters by one: none reaches the end of its
        # block of draws or the last history cell before then (see _count_steps).
        self._plain_steps = 0
        # begin()'s user draw: the users, the last one, and the noise on a user's factors.
        self._users, self._last_user = np.array([float(len(sim.user_factors))]), np.array([len(sim.user_factors) - 1])
        self._taste_noise = TASTE_NOISE * sim.factor_scale
        self._step_range, self._genres = np.arange(steps), genres
        # State rule (all tasks): no state array is a view into another. The user row is one array
        # (the user model is linear in it); its named columns are read through properties that
        # slice it on each access (``budget``), never kept as views.
        self.state = np.zeros((n, self.user_size + dim + 1))
        # A session's first row: a full budget and the constant 1; its interests are drawn in begin().
        self._start_row = np.zeros(self.state.shape[1])
        self._start_row[[0, -1]] = 1.0
        self.user = np.zeros(n, dtype=np.int64)
        # Rows, ``(3, num_envs)``: each slot's steps taken, the cell of this step's draws in the flattened
        # block arrays, and the cell of this step in the flattened history arrays (the last one past the
        # end); one array, so that one addition advances all three.
        self.counters = self._start_counters.copy()
        self.episode = np.zeros(n, dtype=np.uint64)
        self.current = np.zeros((n, k), dtype=np.int64)
        # Row ``BLOCK * slot + offset``: the candidates of the slot's step ``offset`` in its block (one
        # row a step: the next offer is one gather by the block cell).
        self.block_candidates = np.zeros((n * block, k), dtype=np.int64)
        self.block_clicks = np.zeros((n, block))
        self.history_items = np.zeros((n, steps), dtype=np.int64)  # the dtype of the items shown: put() without a cast
        self.history_clicks = np.zeros((n, steps), dtype=bool)
        self.history_engagement = np.zeros((n, steps))
        self.last_item = np.full(n, -1, dtype=np.int64)
        self.last_click = np.zeros(n, dtype=bool)
        self.last_engagement = np.zeros(n)
        # What a whole batch starts with, shared and read-only: a step replaces these arrays, never writes them.
        self._begun = (self.last_item.copy(), self.last_click.copy(), self.last_engagement.copy())
        for array in self._begun:
            array.flags.writeable = False
        # The single env asks for the text at every step: it keeps the session's text so far (the
        # header and the lines of its first ``_kept_steps`` steps, which never change) instead of
        # formatting the whole session again each time.
        self.keep_lines = n == 1
        self._kept_text, self._kept_steps = "", 0

    @property
    def budget(self) -> np.ndarray:
        """``(num_envs,)``: the budget left, as a fraction of ``budget`` (column 0 of ``state``, a view)."""
        return self.state[:, 0]

    @property
    def steps(self) -> np.ndarray:
        """``(num_envs,)``: the steps taken in each slot's session (row 0 of ``counters``, a view)."""
        return self.counters[0]

    def _tables(self, sim: Simulator, genres: int, dim: int) -> None:
        """The per-item readout and update tables of the state row (see the class docstring)."""
        m, visible = sim.num_items, self.user_size
        summary, fatigue = slice(3, 3 + dim), slice(3 + dim, visible)
        taste, one = slice(visible, visible + dim), visible + dim
        genre_weights = sim.genres / np.maximum(sim.genres.sum(axis=1, keepdims=True), 1.0)
        readout = np.zeros((m, 2, one + 1))
        readout[:, 0, one] = CLICK_BIAS + APPEAL_WEIGHT * sim.appeal
        readout[:, 0, fatigue] = -FATIGUE_WEIGHT * genre_weights
        readout[:, 0, taste] = AFFINITY_WEIGHT * sim.item_factors
        readout[:, 1, one] = ENGAGEMENT_BASE + QUALITY_ENGAGEMENT * (sim.quality - 0.5)
        readout[:, 1, taste] = AFFINITY_ENGAGEMENT * sim.item_factors
        self.readout = np.ascontiguousarray(readout[:, :, self._hidden :])
        self.refund = QUALITY_REFUND * (sim.quality - QUALITY_THRESHOLD)
        # change[i]: what a step that shows item i adds if the user clicks; change[m]: without a click.
        change = np.zeros((m + 1, one + 1))
        change[:, 0] = -STEP_COST / self.budget_start
        change[:, 1] = 1.0 / self.max_steps
        change[:m, 0] += self.refund / self.budget_start
        change[:m, 2] = 1.0 / self.max_steps
        change[:m, summary] = (1.0 - FATIGUE_DECAY) * sim.features[:, 3 + genres :]
        change[:m, fatigue] = (1.0 - FATIGUE_DECAY) * sim.genres
        change[:m, taste] = DRIFT * sim.item_factors
        decay = np.ones(one + 1)
        decay[summary] = decay[fatigue] = FATIGUE_DECAY
        # Row 0: what a step keeps of the state without a click; row 1: with one, where the interests
        # also keep 1 - DRIFT. Their decay is exactly 1, so one product per step gives the same bits
        # as decaying the row and then scaling the interests.
        decay_by_click = np.stack([decay, decay])
        decay_by_click[1, taste] *= 1.0 - DRIFT
        self.change = change
        # The decay of a step whose change is ``change[row]``, by the same row: both gathers take one index (two
        # tables, not one of both rows: the state's update then reads whole rows, which a thousand slots need).
        self._decay = decay_by_click[(np.arange(m + 1) < m).astype(np.int64)]  # row m: the step without a click
        self.genre_bits = (sim.genres.astype(np.int64) << np.arange(genres)).sum(axis=1)

    def _draw_block(self, slots: np.ndarray, first: np.ndarray) -> None:
        """Draw the candidates and click draws of steps ``first .. first + BLOCK - 1`` of ``slots``."""
        words = hash_keys(self.episode[slots, None], self._block_words + self._words * first[:, None])
        rows = slot_index(slots)
        candidates, self.block_clicks[rows] = self._cut_block(words)
        self.block_candidates.reshape(self.num_envs, self._block, -1)[rows] = candidates

    def _cut_block(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut a block of steps' hash words into candidates (16 bits each) and click thresholds (32 bits).

        Draw ``2d + 1 + W * step + w`` of a session is word ``w`` of that step, so every draw is a
        function of the session's key and the step alone: drawing a block at a time only saves
        calls. The words are cut as little-endian on every platform.

        Returns:
            ``(candidates (E, BLOCK, K) int64, click thresholds (E, BLOCK))`` for ``E`` rows of words.
        """
        words = words.astype("<u8", copy=False).reshape(len(words), self._block, self._words)
        bits = words.view("<u2")[:, :, 2 : 2 + self.num_candidates].astype(np.int64)
        candidates = self._stratum_low + ((bits * self._stratum_width) >> _CANDIDATE_SHIFT)
        uniform = (words.view("<u4")[:, :, 0] + _HALF) * _TWO_TO_MINUS_32
        return candidates, np.log(uniform) - np.log1p(-uniform)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a user (a real user's factors plus noise) and the first candidates of the session."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> _Begins:
        """The sessions of ``keys``: the user, the first state row and the first block of draws (see :meth:`begin`)."""
        sim, dim = self.sim, self.sim.dim
        # Draws 0 .. 2d of the session: the user and the noise on their factors; then steps 0 .. BLOCK-1.
        words = hash_keys(keys[:, None], self._begin_words)  # (sessions, words): the counters broadcast
        draws = hashes_to_uniform(words[:, : 2 * dim + 1])
        user = np.minimum((draws[:, 0] * self._users).astype(np.int64), self._last_user)
        gaussian = np.sqrt(_MINUS_TWO * np.log1p(-draws[:, 1 : dim + 1])) * np.cos(_TWO_PI * draws[:, dim + 1 :])
        start = np.repeat(self._start_row[None], len(keys), axis=0)
        start[:, self.user_size : -1] = sim.user_factors.take(user, axis=0) + self._taste_noise * gaussian
        candidates, clicks = self._cut_block(words[:, 2 * dim + 1 :])
        return _Begins(keys.astype(np.uint64), start, user, candidates, clicks)

    def begin_drawn(self, slots: np.ndarray, drawn: tuple[np.ndarray, ...]) -> None:
        """Start :meth:`draw_begins`'s sessions in ``slots`` (copies: ``drawn`` is never written or kept)."""
        keys, start, user, candidates, clicks = drawn
        rows = slot_index(slots)
        self.state[rows] = start
        self.episode[rows] = keys
        self.block_candidates.reshape(self.num_envs, self._block, -1)[rows] = candidates
        self.block_clicks[rows] = clicks
        self.user[rows] = user
        # A session at step 0 has BLOCK - 1 plain steps ahead (fewer if shorter); the other slots' count holds.
        first = min(self._block - 1, self.max_steps - 1)
        if len(slots) == self.num_envs:  # the whole batch (the single env): new arrays, shared constants
            self.current = self.block_candidates.take(self._block_cells, axis=0)  # each slot's step 0
            self.last_item, self.last_click, self.last_engagement = self._begun
            self.counters = self._start_counters.copy()
            self._plain_steps = first
        else:
            # Fresh arrays, not writes into ones that an earlier step handed out (its rewards are last_engagement).
            self.current, self.last_item = self.current.copy(), self.last_item.copy()
            self.last_click, self.last_engagement = self.last_click.copy(), self.last_engagement.copy()
            self.current[rows] = candidates[:, 0]
            self.last_item[rows] = -1
            self.last_click[rows] = False
            self.last_engagement[rows] = 0.0
            self.counters[:, rows] = self._start_counters[:, rows]
            self._plain_steps = min(self._plain_steps, first)
        self._kept_text, self._kept_steps = "", 0

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Show each slot's chosen item; the user clicks or not, engages, tires, drifts, spends budget."""
        # Few, whole-array numpy calls: a one-slot call (the single env) costs their number, not their size;
        # operands of one shape and dtype (numpy's fast path: no broadcasting, no casts).
        state, counters = self.state, self.counters
        offer = actions if self._offer_cells is None else self._offer_cells + actions
        chosen = self.current.take(offer)  # take without an axis reads the flattened array
        # Rows (logit, value of a click), each read by an integer index.
        products = _einsum("nw,nkw->kn", state[:, self._hidden :], self.readout.take(chosen, axis=0))
        # u < sigmoid(logit) <=> logit > log(u / (1 - u)): the draws are stored as those thresholds.
        click = products[0] > self.block_clicks.take(counters[1])
        engagement = np.maximum(products[1], _ZERO) * click
        # In place: at a thousand slots a new state array costs more than the one-slot call saves.
        row = np.where(click, chosen, self._no_click)
        state *= self._decay.take(row, axis=0)
        state += self.change.take(row, axis=0)
        budget = state[:, 0]
        spent = budget <= _ZERO
        if count_nonzero(spent):  # a budget below 0 shows as 0 (only where a session ends)
            np.maximum(budget, _ZERO, out=budget)
        cells = counters[2]
        self.history_items.put(cells, chosen)
        self.history_clicks.put(cells, click)
        self.history_engagement.put(cells, engagement)
        self.counters = counters = counters + self._counter_step
        if self._plain_steps:
            self._plain_steps -= 1
        else:  # some slot ends its block of draws or reaches its last history cell
            self._count_steps(counters)
        self.current = self.block_candidates.take(counters[1], axis=0)
        self.last_item, self.last_click, self.last_engagement = chosen, click, engagement
        rewards = engagement if self.reward == "engagement" else click.astype(np.float64)
        return rewards, spent

    def _count_steps(self, counters: np.ndarray) -> None:
        """Set the block and history cells from the steps taken, draw the blocks that start, count the plain steps.

        A step is plain (it adds one to each counter, nothing else) while no slot starts a new block
        of draws (its block cell is ``steps % BLOCK``) or passes its last history cell (``max_steps - 1``,
        which every step after the end writes again); :meth:`advance` counts those steps down and
        calls this on the next one.
        """
        steps = counters[0]
        offset = steps % self._block_size
        counters[1] = self._block_cells + offset
        counters[2] = self._history_cells + np.minimum(steps, self._last_step)
        starting = np.flatnonzero(offset == 0)
        if starting.size:
            self._draw_block(starting, steps[starting])
        # The steps before any slot's next block (BLOCK - 1 - offset) or its last history cell.
        self._plain_steps = max(0, min(self._block - 1 - int(offset.max()), self.max_steps - 1 - int(steps.max())))

    def outcomes(self, items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What showing ``items`` now would do; **reads hidden state** (interests, fatigue).

        Args:
            items: catalog rows, shape ``(num_envs, m)`` (per slot) or ``(m,)`` (the same for every
                slot); None for the items on offer.

        Returns:
            ``(click probability, engagement if clicked, budget given back if clicked)``, each of
            shape ``(num_envs, m)``; the budget is in the units of ``budget`` (a step costs 1).
        """
        items = self.current if items is None else np.asarray(items)
        readout = np.take(self.readout, items, axis=0)
        if items.ndim == 1:
            products = self.state[:, self._hidden :] @ readout.reshape(-1, readout.shape[-1]).T
            logit, engagement = products[:, 0::2], products[:, 1::2]
            refund = np.broadcast_to(self.refund[items], logit.shape)
        else:
            logit, engagement = np.einsum("nw,nmkw->knm", self.state[:, self._hidden :], readout)
            refund = self.refund[items]
        return 1.0 / (1.0 + np.exp(-logit)), np.maximum(engagement, 0.0), refund

    def observe(self) -> np.ndarray:
        """The visible user block, then the features of the candidates on offer."""
        return self._observation(self.state, self.current)

    def observe_slots(self, slots: np.ndarray) -> np.ndarray:
        """:meth:`observe` of ``slots`` alone."""
        return self._observation(self.state[slots], self.current[slots])

    def _observation(self, state: np.ndarray, offered: np.ndarray) -> np.ndarray:
        items = self._features.take(offered, axis=0).reshape(len(offered), -1)
        return np.concatenate([state[:, : self.user_size], items], axis=1, dtype=np.float32)

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The user block and the features of the chosen candidate (the item about to be shown)."""
        observations = np.asarray(observations, dtype=np.float32).reshape(len(actions), -1)
        items = observations[:, self.user_size :].reshape(len(actions), self.num_candidates, self.item_size)
        return np.concatenate([observations[:, : self.user_size], items[np.arange(len(actions)), actions]], axis=1)

    def step_info(self) -> dict[str, np.ndarray]:
        """The item just shown and its outcome, the budget left and the items now on offer.

        The state arrays themselves, not views of them (each view is one more call, which a
        one-slot step pays in full): the core copies what it hands out in the infos.
        """
        return self._info(
            self.current, self.last_item, self.last_click, self.last_engagement, self.state[:, 0], self._budget_scale
        )

    def step_info_slots(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`step_info` of ``slots`` alone."""
        return self._info(
            self.current[slots],
            self.last_item[slots],
            self.last_click[slots],
            self.last_engagement[slots],
            self.state[slots, 0],
            self._budget_scale,
        )

    def step_info_row(self, row: int) -> dict[str, Any]:
        """:meth:`step_info`'s values of slot ``row`` (the single env's info): numpy scalars, a new offer array."""
        return self._info(
            self.current[row].copy(),
            self.last_item[row],
            self.last_click[row],
            self.last_engagement[row],
            self.state[row, 0],
            self._budget_scalar,
        )

    def _info(
        self,
        offered: np.ndarray,
        shown: np.ndarray,
        click: np.ndarray,
        engagement: np.ndarray,
        budget: np.ndarray,
        scale: np.ndarray | np.float64,
    ) -> dict[str, Any]:
        """The info of slots (arrays, ``scale`` of shape (1,)) or of one slot (numpy scalars, ``scale`` one too)."""
        info = {
            "offered": offered,
            "shown": shown,
            "click": click,
            "step_engagement": engagement,  # "engagement" is the session's total, at its end
            "budget": budget * scale,
        }
        if self.info_titles:
            info["offered_titles"] = self.sim.titles.take(offered)
            info["shown_title"] = self._shown_titles[shown]  # an object array's gather: indexing beats take
        return info

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Clicks, click-through rate, total engagement, steps, and distinct genres clicked."""
        rows = slot_index(slots)  # one slot (the single env): slices, not gathers
        length = np.minimum(self.counters[0, rows], self.max_steps)
        # History beyond a session's length is stale (from the slot's previous session).
        played = self._step_range < length[:, None]
        items, clicked = self.history_items[rows], self.history_clicks[rows] & played
        covered = np.bitwise_or.reduce(np.where(clicked, self.genre_bits.take(items), 0), axis=1)
        clicks = clicked.sum(axis=1)
        return {
            "clicks": clicks,
            "ctr": clicks / np.maximum(length, _ONE),
            "engagement": np.where(played, self.history_engagement[rows], 0.0).sum(axis=1),
            "session_length": length,
            "genre_coverage": _bit_count(covered, self._genres),
        }

    def text(self, slot: int) -> str:
        """The session so far (a header, one line per shown item), then the budget left and the offer.

        With :attr:`keep_lines` (one slot) the session's text of earlier calls is reused: a line
        never changes once its step is taken, except the last step's, which a step after the end
        writes again (so that one is never kept). A step of the single env adds one line.
        """
        steps = min(self.counters.item(0, slot), self.max_steps)
        keep = self.keep_lines
        session, start = (self._kept_text, self._kept_steps) if keep else ("", 0)
        if not session:
            session = f"MovieLens user {int(self.user[slot])}{self._budget_text}\n"
        if keep:
            stable = min(steps, self.max_steps - 1)  # the lines that no later step writes again
            if start < stable:
                session += self._line(slot, start) if stable == start + 1 else self._lines(slot, start, stable)
                self._kept_steps = stable
            self._kept_text, start = session, stable
        if start < steps:
            session += self._lines(slot, start, steps)
        offer = self._offer(self.current[slot].tolist())
        return f"{session}budget left {self.state.item(slot, 0) * self.budget_start:.2f}; on offer:{offer}"

    def _offer(self, items: list[int]) -> str:
        r"""The offer's lines, ``"\n  [j] Title"`` for the catalog rows ``items`` (one per candidate)."""
        if self._offer_lines is None:
            if self.num_candidates * self.sim.num_items > _OFFER_LINES:
                return self._offer_format.format(*map(self._title_list.__getitem__, items))
            self._offer_lines = [
                [f"\n  [{j}] {title}" for title in self._title_list] for j in range(self.num_candidates)
            ]
        return "".join(map(list.__getitem__, self._offer_lines, items))

    def _lines(self, slot: int, start: int, stop: int) -> str:
        """The lines of ``slot``'s steps ``start .. stop - 1``."""
        return "".join([self._line(slot, t) for t in range(start, stop)])

    def _line(self, slot: int, t: int) -> str:
        """The line of ``slot``'s step ``t``: "  7. Title (year) [Genres] -> outcome"."""
        cell = slot * self.max_steps + t
        if self.history_clicks.item(cell):
            outcome = f"click, engagement {self.history_engagement.item(cell):.2f}\n"
        else:
            outcome = "no click\n"
        return f"{self._line_starts[t]}{self._line_labels[self.history_items.item(cell)]}{outcome}"


def _core(env: CoreVectorEnv) -> RecommendationCore:
    """The Recommendation core behind ``env``; another env is an error that names it."""
    core = env.unwrapped.core
    if not isinstance(core, RecommendationCore):
        raise TypeError(
            f"this reference policy is for {RecommendationCore.env_id}, but the env runs {type(core).__name__}; "
            "use the reference policies of that env (nlp_envs.reference_policies(env_id))."
        )
    return core


def popular_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """The candidate with the highest appeal (popularity), read from the observation only."""
    core = _core(env)
    items = np.asarray(observations)[:, core.user_size :].reshape(len(observations), core.num_candidates, -1)
    return items[:, :, 0].argmax(axis=1)


def _expected(core: RecommendationCore, items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected reward and expected budget spent of showing ``items`` now (reads hidden state)."""
    probability, engagement, refund = core.outcomes(items)
    reward = probability * engagement if core.reward == "engagement" else probability
    return reward, STEP_COST - probability * refund


def myopic_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """The candidate with the highest expected immediate reward; **uses hidden state**.

    It reads the true user state (interests, fatigue) through ``env`` and maximises the expected
    reward of this step alone: ``P(click) * engagement`` (``P(click)`` with ``reward="click"``).
    """
    reward, _ = _expected(_core(env))
    return reward.argmax(axis=1)


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Plans for the whole session by pricing the user's time budget; **uses hidden state**.

    The session ends when the budget runs out, so a unit of budget is worth the reward the user
    would still give for it. The oracle reads the true user state (interests, fatigue) through
    ``env`` and computes, for each candidate, the expected reward ``r = P(click) * engagement``
    (``P(click)`` with ``reward="click"``) and the expected budget spent
    ``c = 1 - P(click) * refund`` (bait spends more than the step, satisfying movies give some
    back). It shows the candidate maximising ``r - price * c``: a Lagrangian relaxation of the
    budget constraint. ``price`` is the best reward per unit of budget this user can give, found
    by Dinkelbach's method as the fixed point of ``E[max over K candidates of (r - price * c)] = 0``,
    the expectation taken over K uniform draws from a fixed random sample of the catalog, which
    is (nearly: the env draws one per stratum) how the env draws candidate sets. Where the budget
    left outlasts the steps left at that pace, budget is worth nothing (``price = 0``) and the
    oracle acts myopically. It re-plans every step, so it follows the user's drift and fatigue,
    but it prices them through the current state only, not their future: it is the strongest
    simple policy, not the optimum.
    """
    core = _core(env)
    reward, cost = _expected(core)
    price = _budget_price(core, getattr(env.unwrapped, "episode_limit", core.max_steps))
    return (reward - price[:, None] * cost).argmax(axis=1)


def _budget_price(core: RecommendationCore, limit: int) -> np.ndarray:
    """Reward per unit of budget under the best price (Dinkelbach), 0 where the step limit binds first."""
    sample = min(core.sim.num_items, PRICE_SAMPLE)
    reward, cost = _expected(core, np.arange(sample))
    # P(the best of K uniform draws from the sample is its j-th smallest value).
    k = core.num_candidates
    weights = (np.arange(1, sample + 1) / sample) ** k - (np.arange(sample) / sample) ** k
    price = np.zeros(core.num_envs)
    best_cost = cost.mean(axis=1)
    for _ in range(PRICE_ITERATIONS):
        order = np.argsort(reward - price[:, None] * cost, axis=1)
        best_reward = np.take_along_axis(reward, order, axis=1) @ weights
        best_cost = np.take_along_axis(cost, order, axis=1) @ weights
        price = best_reward / np.maximum(best_cost, 1e-9)
    steps_left = limit - core.steps
    budget_left = core.budget * core.budget_start
    return np.where(budget_left < best_cost * steps_left, price, 0.0)


class RecommendationEnv(CoreEnv):
    """Recommend movies to a simulated MovieLens user for a session, where clickbait shortens it.

    ## Description

    A user simulator in the spirit of RecSim's interest evolution, grounded in real ratings. From
    MovieLens-100k (read in place from the ``recbole==1.2.1`` package; 100,000 ratings by 943
    users of 1,682 movies) the env fits a biased matrix factorisation (8 factors, alternating
    least squares; on the held-out 10% of ratings its RMSE is about 0.92, against 1.03 for item
    means) and keeps the ``min_item_ratings=20`` catalog of 939 movies, each with:

    - *appeal*: the percentile of its number of ratings (how likely it is to be clicked);
    - *quality*: the percentile of its average rating (how satisfying it is to watch);
    - its title, year and genres (18), and its latent factors.

    A session's user is a real user's factors plus noise. Each step the env offers
    ``num_candidates`` movies (one uniform draw from each of K strata of the shuffled catalog,
    so K distinct movies) and the agent shows one. The user clicks with probability
    ``sigmoid(-3.5 + 4 * appeal + affinity - 3 * fatigue)`` (the no-click option is the
    intercept), where *affinity* is the dot product of the user's and the movie's factors
    (standardised over users and movies) and *fatigue* the user's mean fatigue with the movie's
    genres. A click engages the user for ``max(0, 1 + 0.3 * (quality - 0.5) + 0.3 * affinity)``,
    tires them of its genres (fatigue ``f <- 0.8 f + 0.2`` for its genres; every genre decays by
    0.8 per step) and pulls their interests 10% of the way toward the movie's factors.

    Every step spends 1 unit of the user's time ``budget``; a click gives back
    ``4 * (quality - 0.75)``: the best movies make the step free, while *bait* (high appeal, low
    quality) costs up to 3 more units. So the titles that earn the most clicks and engagement
    now shorten the session: a myopic policy loses to one that plans for the session.

    ## Action Space

    ``Discrete(num_candidates)``: which of the offered movies to show.

    ## Observation Space

    ``Box(float32)`` of size ``29 + num_candidates * 29`` (319 by default), ``G = 18`` genres and
    ``d = 8`` factors; bounds are 0 and 1 except for factors, which lie in [-5, 5]:

    | Index                  | Observation                                                     |
    |------------------------|-----------------------------------------------------------------|
    | 0                      | budget left / ``budget``                                        |
    | 1                      | steps taken / ``max_steps``                                     |
    | 2                      | clicks / ``max_steps``                                          |
    | 3 .. 10                | history summary: decayed mean (0.8 per step) of clicked factors |
    | 11 .. 28               | genre fatigue (a function of the click history)                 |
    | 29 + 29 j + 0          | candidate j: appeal (popularity percentile)                     |
    | 29 + 29 j + 1          | candidate j: quality (average-rating percentile)                |
    | 29 + 29 j + 2          | candidate j: release year, 0 oldest to 1 newest (0.5 unknown)   |
    | 29 + 29 j + 3 .. 20    | candidate j: genres, 0/1                                        |
    | 29 + 29 j + 21 .. 28   | candidate j: latent factors, in population standard deviations  |

    The user's interests (their factors, which drift) are hidden; everything else is visible.

    ## Rewards

    ``reward="engagement"`` (default): the engagement of a click, 0 without one. With
    ``reward="click"``: 1 for a click, else 0.

    ## Starting State

    A user drawn uniformly from the 943, with their factors plus Gaussian noise (0.5 population
    standard deviations per factor), a full budget, no fatigue and an empty history.

    ## Episode End

    1. Termination: the budget is spent (it reaches 0).
    2. Truncation: ``max_steps`` steps (the registered ``max_episode_steps``, 50).

    ## Information

    Every step: ``offered`` (catalog rows of the movies on offer now, ``(num_candidates,)``),
    ``shown`` (the row just shown, -1 at reset), ``click``, ``step_engagement`` (this step's) and
    ``budget`` (left).
    With ``info_titles`` (default: on for ``gym.make``, off for vector envs, where decoding a
    thousand titles a step would cost more than the step) also ``offered_titles`` and
    ``shown_title``; ``env.unwrapped.core.sim.titles[rows]`` decodes rows. At the end: ``clicks``,
    ``ctr``, ``engagement`` (total), ``session_length`` and ``genre_coverage`` (distinct genres
    among the clicked movies). ``text`` at reset and every step (in the vector env only at reset and
    at the end, with ``info_text=True``): the session, one line per shown movie, then the movies on
    offer.

    ## Afterstate

    The user block of the observation and the features of the chosen candidate (the movie about
    to be shown): ``Box`` of size 58.

    ## Reference policies

    ``random``; ``popular`` (the highest appeal, from the observation); ``myopic`` (the highest
    expected immediate reward, reading the hidden user state); ``oracle`` (reads the hidden
    state and plans for the session by pricing the budget, see :func:`oracle_policy`). Over 1,000
    sessions (``nlp_envs.evaluate(..., episodes=1000, seed=0)``):

    | policy  | engagement | clicks | CTR   | session length | genres clicked |
    |---------|------------|--------|-------|----------------|----------------|
    | random  | 5.02       | 4.3    | 0.246 | 18.1           | 6.5            |
    | popular | 11.06      | 9.7    | 0.477 | 20.3           | 10.2           |
    | myopic  | 13.71      | 10.3   | 0.563 | 18.6           | 10.5           |
    | oracle  | 16.31      | 12.7   | 0.489 | 25.8           | 11.3           |

    The oracle has the lower CTR and yet more clicks and engagement: it avoids bait, so its
    sessions last longer.

    ## Arguments

    ``catalog="ml-100k"`` or the path of a ``.csv``/``.jsonl`` catalog with the columns ``item_id``,
    ``title``, ``year`` (may be empty) and ``genres`` (``|``-separated), together with
    ``ratings``, the path of a file with ``user_id``, ``item_id`` and ``rating``;
    ``num_candidates=10``, ``max_steps=50``, ``budget=20.0``, ``reward="engagement"``,
    ``min_item_ratings=20``, ``info_titles=None``, ``render_mode=None`` or ``"ansi"``.

    Bounds (the constructor refuses anything else, naming the argument): ``2 <= num_candidates
    <= 65,536`` (and at most the catalog's items), ``1 <= max_steps <= 10,000`` (the user's
    fatigue saturates long before; more only takes memory), ``min_item_ratings >= 1``, a positive
    finite ``budget``, ``info_titles`` None or a bool. Integers are Python or numpy integers,
    never ``bool``. ``num_envs`` sessions whose state would not fit in memory are refused with
    the estimate and the limit (:func:`nlp_envs.resources.check_fits`).

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/Recommendation-v0", render_mode="ansi")
    >>> env.observation_space.shape, env.action_space
    ((319,), Discrete(10))
    >>> observation, info = env.reset(seed=23)
    >>> info["offered_titles"][7:9].tolist()
    ['Mission: Impossible (1996)', 'Lost World: Jurassic Park, The (1997)']
    >>> appeal, quality = observation[29 + 29 * 8 : 29 + 29 * 8 + 2]
    >>> round(float(appeal), 2), round(float(quality), 2)
    (0.8, 0.17)
    >>> observation, reward, terminated, truncated, info = env.step(8)
    >>> info["shown_title"], bool(info["click"]), round(float(info["budget"]), 2)
    ('Lost World: Jurassic Park, The (1997)', True, 16.69)
    >>> print(env.render().splitlines()[1])
      1. Lost World: Jurassic Park, The (1997) [Action|Adventure|Sci-Fi|Thriller] -> click, engagement 1.42

    The user clicked the bait (popular, poorly rated): it cost 3.31 units of budget instead of 1.

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/Recommendation-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    gives :class:`RecommendationVectorEnv`, the same core over N slots (see :mod:`nlp_envs.core`
    for seeding and autoreset). A session's user, its candidate sets and its click draws are each a
    function of the session's episode key and the step alone.

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = RecommendationCore


class RecommendationVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`RecommendationEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = RecommendationCore
    reference_policies: ClassVar[dict[str, Any]] = {
        "random": random_policy,
        "popular": popular_policy,
        "myopic": myopic_policy,
        "oracle": oracle_policy,
    }
