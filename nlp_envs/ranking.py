"""Ranking: MDPRank (Wei, Xu et al., SIGIR 2017) over real graded judgments, one position per step."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
from gymnasium import spaces

from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    allowed_acts,
    hash_keys,
    slot_index,
)
from nlp_envs.data.files import DataFileError
from nlp_envs.data.judgments import SPLITS, file_judgments, movielens_judgments
from nlp_envs.data.simulator import FACTOR_BOUND
from nlp_envs.policies import random_policy

NDCG_CUTOFF = 5  # the second NDCG cutoff reported (NDCG@5)
_HINT_STREAM = 1 << 20  # counters of the relevance hint's draws, apart from the candidate draws
_LARGEST_HASH = np.array(np.iinfo(np.uint64).max, dtype=np.uint64)  # a 0-d array (see _MINUS_TWO)
# Below any positive ideal DCG: the divisor of a query whose ideal DCG is 0 (a 0-d array, which
# numpy takes at less cost than a Python float).
_TINY = np.array(1e-300)
# The largest magnitude of the hint's Gaussian noise: sqrt(-2 log(2**-53)) = 8.57.. for the
# largest uniform draw below 1, times a cosine.
_NOISE_BOUND = 8.6
# The rows of RankingCore._pair_values: the gain, whether the pair is relevant (1.0 or 0.0, precision
# at 1), the relevance (the rows of _values), the gain that placing the candidate still earns (the
# gain until it is placed, then 0: _left) and (with a hint) the relevance scaled to [0, 1].
_GAIN, _RELEVANT, _RELEVANCE, _LEFT, _SCALED = range(5)
_add_reduce = np.add.reduce  # sums along an axis given by position: the sum method's values, at less cost
_TOP_BITS = np.array(11, dtype=np.uint64)  # a hash shifted right by this keeps its top 53 bits (hashes_to_uniform)
# The Box-Muller factor -2 of the hint's noise as a 0-d array: an array operand costs numpy less than a
# Python float (which it converts at every call), and the products are the same.
_MINUS_TWO = np.array(-2.0)
# What a step writes for the candidate it places, as 0-d arrays for the same reason: its gain left,
# its index among those not placed, its open flag and its placed flag in obs.
_ZERO, _NOT_OPEN, _FALSE, _PLACED = np.array(0.0), np.array(-1), np.array(False), np.array(1.0, dtype=np.float32)
# At most this many endings of a position's line (relevance and DCG increment) are kept per core:
# MovieLens needs 5 per position, a file with continuous relevance could need one per pair.
_ENDINGS_KEPT = 4096
_BEYOND_WIDTH = 2048  # RankingCore._beyond is kept for pools narrower than this


def gains(relevance: np.ndarray | float) -> Any:
    """The DCG gain ``2**relevance - 1`` of graded relevance labels, elementwise (an array or a float)."""
    return np.exp2(relevance) - 1.0


def discounts(count: int) -> np.ndarray:
    """``1 / log2(position + 1)`` for positions ``1 .. count``: the DCG discount of each position."""
    return 1.0 / np.log2(np.arange(2, count + 2))


class _Drawn(NamedTuple):
    """Episodes drawn from their keys (:meth:`RankingCore.draw_begins`), a row per episode."""

    query: np.ndarray  # (n,) the query's row of the split
    pairs: np.ndarray  # (n, M) the candidates' judged pairs
    candidates: np.ndarray  # (n, M) their documents
    values: np.ndarray  # (n, values, M) their per-candidate values (gain, relevance, ...)
    ideal: np.ndarray  # (n, 1 or 2) IDCG at K (and at the cutoff)
    heads: np.ndarray  # (n, query size) the observation's query part
    blocks: np.ndarray  # (n, M, candidate size) the observation's candidate blocks


@dataclass(slots=True)
class _EpisodeText:
    """What one episode's text is made of, kept from step to step (the single env asks for it at every step).

    Positions are filled in order and a filled one never changes, and the candidates placed are
    exactly those at the filled positions (a wasted position holds -1): so the text grows by the
    lines of the positions filled since it was last asked for, and the list of candidates left
    loses those positions' candidates.

    A begin drops its slot's one, so that the slot's next text starts a new one.

    Attributes:
        titles: each candidate's title.
        relevance: each candidate's relevance.
        gain: each candidate's gain.
        ranked: the query line and the lines of the positions filled so far, joined.
        filled: the positions whose lines ``ranked`` holds.
        left: the line of each candidate not placed yet, by candidate, in index order.
        to_place: the "to place" block of the candidates in ``left``, or None until it is asked for
            again after ``left`` changed.
    """

    titles: list[str]
    relevance: list[float]
    gain: list[float]
    ranked: str
    filled: int
    left: dict[int, str]
    to_place: str | None = None


class RankingCore(TaskCore):
    """Batched Ranking dynamics; see :class:`RankingEnv` for the documentation.

    Per slot: the query, its ``M`` candidates (rows of the judged pairs, in a random order), their
    labels, which are placed, and the candidate placed at each position so far (-1 for a position
    spent on an already placed candidate). ``self.obs`` holds every slot's observation and is
    updated in place; :meth:`observe` returns a copy.
    """

    env_id = "nlp_envs/Ranking-v0"
    metric_names = ("ndcg", "ndcg_at_5", "precision_at_1", "dcg", "wasted_positions")

    def __init__(
        self,
        num_envs: int,
        *,
        num_candidates: int = 10,
        positions: int | None = None,
        split: str = "train",
        judgments: str | None = None,
        features: str | None = None,
        relevance_hint: float | None = None,
    ) -> None:
        super().__init__(num_envs)
        for name, value, minimum in (("num_candidates", num_candidates, 2), ("positions", positions, 1)):
            if value is None and name == "positions":
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{self.env_id}: {name} must be an integer >= {minimum}, got {value!r}.")
        m = int(num_candidates)
        k = m if positions is None else int(positions)
        if k > m:
            raise ValueError(
                f"{self.env_id}: positions={k} exceeds num_candidates={m}; a list cannot be longer than its "
                "candidates. Lower positions or raise num_candidates."
            )
        if split not in SPLITS:
            raise ValueError(f"{self.env_id}: split={split!r} is not one of {SPLITS}.")
        if relevance_hint is not None and (
            not isinstance(relevance_hint, (int, float, np.integer, np.floating))
            or isinstance(relevance_hint, bool)
            or not 0 <= relevance_hint < float("inf")
        ):
            raise ValueError(
                f"{self.env_id}: relevance_hint must be None or a finite number >= 0 (the noise of the hint "
                f"feature), got {relevance_hint!r}."
            )
        if (judgments is None) != (features is None):
            raise ValueError(
                f"{self.env_id}: judgments and features go together: give both paths (a (query, document, "
                "relevance) file and a per-document features file) or neither for MovieLens-100k."
            )
        if judgments is not None and not (isinstance(judgments, str) and isinstance(features, str)):
            raise ValueError(
                f"{self.env_id}: judgments and features must be file paths (strings), got "
                f"{type(judgments).__name__} and {type(features).__name__}."
            )
        data = movielens_judgments() if judgments is None else file_judgments(judgments, str(features))
        queries = data.queries(split, m)
        if not len(queries):
            counts = np.diff(data.offsets)
            most = int(counts.max()) if len(counts) else 0
            fix = "use split='all' or lower num_candidates" if split != "all" else "lower num_candidates"
            error = DataFileError if judgments is not None else ValueError
            raise error(
                f"{self.env_id}: no query of the {split!r} split of {data.name} has num_candidates={m} judged "
                f"documents (the most any query has is {most}); {fix}."
            )
        self.data, self.split, self.queries = data, split, queries
        self.num_candidates, self.positions = m, k
        self.max_steps = k + 1  # episodes end by termination after k positions; the limit never cuts one
        self.hint = None if relevance_hint is None else float(relevance_hint)
        self._hint_scale = np.array(0.0 if self.hint is None else self.hint)  # a 0-d array (see _MINUS_TWO)
        low, high = data.relevance_range
        # Each pair's relevance scaled to [0, 1]: the hint before its noise.
        self._scaled_relevance = (data.relevance - float(low)) / max(float(high - low), 1e-12)
        self._counts = np.diff(data.offsets)  # judged documents per query
        self._pool_width = int(self._counts[queries].max())
        # Per query of the split (by its draw): its number of judged documents, its index and its first
        # pair M times (one gather per begin for the three; the first pair as an (n, M) block, which
        # numpy adds to the (n, M) pool columns drawn at a fraction of the cost of broadcasting a column).
        self._spans = np.concatenate(
            [self._counts[queries, None], queries[:, None], np.repeat(data.offsets[queries, None], m, axis=1)], axis=1
        )
        self._query_count = np.array(len(queries), dtype=np.uint64)  # a 0-d array (see _MINUS_TWO)
        self._pool_columns = np.arange(self._pool_width)
        # Per number c of judged documents, True for the pool columns from c on: a begin gathers its
        # slots' rows (one take), which costs a one-slot call half of comparing the columns with the
        # counts (a broadcast). Kept up to 4 MB (a pool of 2,047 columns); a wider pool compares.
        self._beyond = (
            self._pool_columns >= np.arange(self._pool_width + 1)[:, None] if self._pool_width < _BEYOND_WIDTH else None
        )
        # The counters of an episode's hashes, all hashed in one call: 0 for the query's draw (as
        # random_integers(keys, queries, 0) draws it), one per pool column, then two per candidate for
        # the hint's noise. Unsigned, as hash_keys mixes them: it converts no copy.
        hint_counters = _HINT_STREAM + np.arange(2 * m) if relevance_hint is not None else np.zeros(0, dtype=np.int64)
        self._hash_counters = np.concatenate([[0], self._pool_columns + 1, hint_counters]).astype(np.uint64)
        self._discounts = discounts(k)
        # The discounts once per slot: an (n, K) operand of the same shape as the gains it weighs costs
        # numpy a fraction of broadcasting a (K,) one (begin and metrics slice one row per slot they
        # are given: the rows are alike, and a slice costs less than gathering the slots' rows).
        # (draw_begins grows both row tables to the keys it is given, where they are more than the slots.)
        self._discount_rows = np.tile(self._discounts, (num_envs, 1))
        # The K largest of M values sorted in increasing order, largest first: one reversed slice.
        self._top_down = slice(m - 1, m - k - 1 if k < m else None, -1)
        # What the top 53 bits of the hint's hashes are multiplied by, per slot (same-shape operands
        # too): -2**-53 for the first M (the log's argument, -u for the uniform u that hashes_to_uniform
        # gives) and 2 pi 2**-53 for the last M (the cosine's, 2 pi u). The bits are an integer below
        # 2**53 (exact in float64) and scaling by a power of two is exact: one product gives the
        # values that u times -1 and 2 pi give, bit for bit.
        self._box_muller_rows = np.tile(
            np.repeat([-(2.0**-53), 2.0 * np.pi * 2.0**-53], m if relevance_hint is not None else 0), (num_envs, 1)
        )
        self._discount_list = self._discounts.tolist()
        self._titles = data.titles.tolist()
        # Each query's first line of the text.
        self._headers = [f"{data.name}, query {name}: {k} positions for {m} candidates" for name in data.query_names]
        # What the text's lines start with: each candidate's in the list of those left, each
        # position's; and each position's line when wasted.
        self._candidate_labels = [f"  [{j}] " for j in range(m)]
        # The position's with the line break before it (the text grows by a line per position).
        self._position_labels = [f"\n{position + 1:3d}. " for position in range(k)]
        self._wasted_lines = [f"{label}(wasted: an already placed candidate)" for label in self._position_labels]
        # The ending of a position's line by (relevance, position): a function of the two (the gain is
        # one of the relevance), formatted once instead of at every step (see text).
        self._endings: dict[tuple[float, int], str] = {}

        self.query_size = 1 + data.query_features.shape[1]
        self.candidate_size = (
            data.document_features.shape[1] + data.pair_features.shape[1] + (self.hint is not None) + 1
        )
        size = self.query_size + m * self.candidate_size
        bound = np.full(size, FACTOR_BOUND, dtype=np.float32)
        bound[0] = 1.0
        placed_columns = self.query_size + self.candidate_size * np.arange(m) + self.candidate_size - 1
        low_bounds = -bound
        low_bounds[[0, *placed_columns]] = 0.0
        bound[placed_columns] = 1.0
        self.single_observation_space = spaces.Box(low_bounds, bound, dtype=np.float32)
        self.afterstate_space = self.single_observation_space
        self.single_action_space = spaces.Discrete(m)
        self._placed_columns = placed_columns
        # Each judged pair's block of the observation (its features, a 0 hint and a 0 placed flag),
        # built once: a reset gathers rows of it instead of assembling them.
        self._blocks = np.zeros((len(data.documents), self.candidate_size), dtype=np.float32)
        features = data.document_features.shape[1] + data.pair_features.shape[1]
        self._blocks[:, :features] = np.concatenate(
            [data.document_features[data.documents], data.pair_features], axis=1
        )
        # Each query's head of the observation (0 positions filled, then its features), built once too.
        self._heads = np.zeros((data.num_queries, self.query_size), dtype=np.float32)
        self._heads[:, 1:] = data.query_features

        # Each judged pair's values that an episode keeps per candidate, one row each (see _GAIN ..
        # _SCALED): a begin gathers them in one call.
        gain = gains(data.relevance)
        values = [gain, (data.relevance >= data.relevant).astype(np.float64), data.relevance, gain]
        if relevance_hint is not None:
            values.append(self._scaled_relevance)
        self._pair_values = np.stack(values)
        # The hint's noise is at most _NOISE_BOUND in magnitude and the scaled relevance lies in
        # [0, 1]: below this noise level the clip to +-FACTOR_BOUND never changes a hint.
        self._clip_hint = self.hint is not None and 1.0 + self.hint * _NOISE_BOUND >= FACTOR_BOUND

        n = self.num_envs
        self.query = np.zeros(n, dtype=np.int64)
        # Per slot and candidate: the rows _GAIN .. _RELEVANCE of _pair_values, and a last column of
        # zeros that nothing writes: what a position without a candidate (-1) reads (see metrics).
        self._values = np.zeros((_LEFT, n, m + 1))
        # What a step reads and writes per slot lies in flat arrays of n M + n K entries: entry
        # i * M + j is slot i's candidate j, entry n M + i K + p is slot i's position p in the int
        # array (the list). A step addresses every one of them by a single 1-d gather or scatter at
        # one index per slot (2-d fancy indexing costs several times as much). A step past the end of
        # a full list addresses the entry of its last position instead of a candidate: there it
        # reads the candidate placed last and writes back what the entries hold (see advance).
        cells = n * m + n * k
        self._ints_flat, self._left_flat = np.full(cells, -1, dtype=np.int64), np.zeros(cells)
        self._open_flat = np.ones(cells, dtype=bool)
        # Each candidate's own index until it is placed and -1 after: what the order gets at a step.
        self._ids = self._ints_flat[: n * m].reshape(n, m)
        self._ids[:] = np.arange(m)
        self._ids_rows = self._ids.copy()  # what a begin writes (rows alike: sliced, not gathered)
        self.order = self._ints_flat[n * m :].reshape(n, k)  # the candidate at each position (-1: unfilled or wasted)
        self._left = self._left_flat[: n * m].reshape(n, m)  # the _LEFT row, by step (see _cells)
        self.pairs = np.zeros((n, m), dtype=np.int64)
        self.candidates = np.zeros((n, m), dtype=np.int64)  # the document of each pair, for every step's info
        # True for the candidates not placed yet: the action mask itself, which step_info hands out
        # as it stands (the shells copy what it hands), so that a step computes no mask.
        self._open = self._open_flat[: n * m].reshape(n, m)
        self.gain, self.relevance = self._values[_GAIN, :, :m], self._values[_RELEVANCE, :, :m]
        self._texts: dict[int, _EpisodeText] = {}  # by slot, until the slot's next begin
        self.t = np.zeros(n, dtype=np.int64)
        self.last = np.full(n, -1, dtype=np.int64)
        self.ideal = np.ones((n, 2))  # IDCG at K and at min(5, K)
        # The observations, then one entry that a step past the end writes its placed flag to.
        self._obs_flat = np.zeros(n * size + 1, dtype=np.float32)
        self.obs = self._obs_flat[: n * size].reshape(n, size)
        # Views of obs: indexed by the slots, a view costs less than obs indexed by a tuple.
        self._obs_heads = self.obs[:, : self.query_size]
        self._obs_blocks = self.obs[:, self.query_size :].reshape(n, m, self.candidate_size)
        self._gain_flat = self._values[_GAIN].reshape(-1)
        self._relevant_flat = self._values[_RELEVANT].reshape(-1)
        self._cells = np.arange(n) * m  # slot i's candidate 0
        # Each entry's placed flag in obs: a candidate's own, the spare entry for a list's.
        self._flag_cells = np.concatenate(
            [((np.arange(n) * size)[:, None] + placed_columns).ravel(), np.full(n * k, n * size)]
        )
        # In the (n, M + 1) rows of _values, entry i * (M + 1) + j; a position without a candidate
        # (-1) reads entry i * (M + 1) - 1: the zero column of slot i - 1, or for slot 0 (index -1) of
        # the last slot. Per position: (n, K), same-shape operands (see the discounts).
        self._cell_rows = np.repeat(np.arange(n)[:, None] * (m + 1), k, axis=1)
        # 1 for a candidate's entry, 0 for a zero column's: what a position holding one counts.
        self._is_candidate = np.tile(np.append(np.ones(m, dtype=np.int64), 0), n)
        self._row_starts = np.arange(n) * size  # each slot's observation entry 0 (positions filled / K)
        # By the number of positions filled t = 0 .. K before a step: what the gain placed is divided
        # by (log2(t + 2), and infinity for a full list: no gain), and after the step: the positions
        # filled (t + 1, or K for a full list), what the observation shows and whether the list is full.
        filled_after = np.minimum(np.arange(k + 1) + 1, k)
        self._divisors = np.log2(np.arange(k + 1) + 2.0)
        self._divisors[k] = np.inf
        self._next_t = filled_after
        self._next_fractions = (filled_after / k).astype(np.float32)
        self._next_full = filled_after == k
        # By slot i and t, the phase t n + i (kept per slot; a begin sets t = 0, phase i): the least
        # entry a step addresses (0 while the list goes on, the entry of its last position once it
        # is full), the entry of the position it fills (a full list: its last one) and the next
        # phase. t-major: slots stepped in lockstep (a vector env) read a contiguous run of each table.
        position_filled = np.minimum(np.arange(k + 1), k - 1)[:, None]
        filled_entries = n * m + np.arange(n) * k + position_filled  # (K + 1, n)
        self._phase_starts = np.arange(n)
        self._phase = self._phase_starts.copy()
        floors = np.zeros((k + 1, n), dtype=np.int64)
        floors[k] = filled_entries[k]
        self._floors = floors.ravel()
        self._fill_entries = filled_entries.ravel()
        self._next_phase = (np.minimum(np.arange(k + 1) + 1, k)[:, None] * n + np.arange(n)).ravel()

    @property
    def placed(self) -> np.ndarray:
        """``(num_envs, M)``: True for the candidates placed so far (a new array)."""
        return ~self._open

    @property
    def documents(self) -> np.ndarray:
        """``(num_envs, M)``: the document (catalog row) of each candidate (a copy)."""
        return self.candidates.copy()

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a query of the split and ``M`` of its judged documents, in a random order."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> _Drawn:
        """The episodes of ``keys``: query, candidates, their values, the ideal DCGs and the observation."""
        m, width, n = self.num_candidates, self._pool_width, len(keys)
        if n > len(self._discount_rows):  # more keys than slots (the single env draws up to 64 ahead)
            self._discount_rows = np.tile(self._discounts, (n, 1))
            self._box_muller_rows = np.tile(self._box_muller_rows[:1], (n, 1))
        # Each key with every counter: the (n, 1) keys broadcast against the counters.
        hashed = hash_keys(keys[:, None], self._hash_counters)
        # The query: the draw of random_integers(keys, len(self.queries), 0), from counter 0's hash.
        spans = self._spans.take(hashed[:, 0] % self._query_count, axis=0)
        query = spans[:, 1]
        # The M judged documents with the smallest hashes (the hash of document column j depends on
        # the key and j only): a uniform M-subset in a uniform order, whatever the batch. Columns past
        # the query's documents get the largest hash, so they sort last (a query has at least M). A
        # stable sort (the fastest here) breaks ties by column: even equal hashes order alike everywhere.
        pool = hashed[:, 1 : width + 1]
        beyond = self._pool_columns >= spans[:, :1] if self._beyond is None else self._beyond.take(spans[:, 0], axis=0)
        np.putmask(pool, beyond, _LARGEST_HASH)
        pairs = spans[:, 2:] + pool.argsort(axis=1, kind="stable")[:, :m]
        # Gathers with the take method: a fraction of fancy indexing's cost, from one slot to thousands.
        values = self._pair_values.take(pairs, axis=1)
        # The gains sorted are the gains of the relevances sorted (2**r - 1 increases with r). Sums
        # by the ufunc's reduce: the sum method's values. One column when the cutoff takes the whole
        # list (both sums are the same sum), else IDCG at K and at the cutoff.
        gain = values[_GAIN].copy()  # the state's gains stay in the drawn order
        gain.sort(axis=1)
        ideal_terms = gain[:, self._top_down] * self._discount_rows[:n]
        if self.positions <= NDCG_CUTOFF:
            ideal = _add_reduce(ideal_terms, 1)[:, None]
        else:
            ideal = np.stack((_add_reduce(ideal_terms, 1), _add_reduce(ideal_terms[:, :NDCG_CUTOFF], 1)), axis=1)
        blocks = self._blocks.take(pairs, axis=0)
        if self.hint is not None:
            top_bits = (hashed[:, width + 1 :] >> _TOP_BITS).astype(np.float64)
            arguments = top_bits * self._box_muller_rows[:n]
            noise = np.sqrt(_MINUS_TWO * np.log1p(arguments[:, :m])) * np.cos(arguments[:, m:])
            hint = values[_SCALED] + self._hint_scale * noise
            if self._clip_hint:  # clip's own ufunc, without np.clip's Python-level wrapper: the same values
                hint = np.minimum(np.maximum(hint, -FACTOR_BOUND), FACTOR_BOUND)
            blocks[:, :, -2] = hint  # into the gathered copy: one write into obs at the begin, not two
        return _Drawn(
            query,
            pairs,
            self.data.documents.take(pairs),
            values.transpose(1, 0, 2),
            ideal,
            self._heads.take(query, axis=0),
            blocks,
        )

    def begin_drawn(self, slots: np.ndarray, drawn: _Drawn) -> None:
        """Start the episodes of ``drawn`` in ``slots``: the state and the observation written."""
        m = self.num_candidates
        at = slot_index(slots)
        values = drawn.values.transpose(1, 0, 2)
        self._values[:, at, :m] = values[:_LEFT]
        self._left[at] = values[_LEFT]
        self.query[at], self.pairs[at], self.candidates[at] = drawn.query, drawn.pairs, drawn.candidates
        self._open[at] = True
        self._ids[at] = self._ids_rows[: len(slots)]
        self.order[at] = -1
        self.t[at] = 0
        self._phase[at] = self._phase_starts[at]
        self.last[at] = -1
        if self._texts:  # the texts of the episodes these slots leave
            for slot in slots.tolist():
                self._texts.pop(slot, None)
        self.ideal[at] = drawn.ideal
        self._obs_heads[at] = drawn.heads
        self._obs_blocks[at] = drawn.blocks

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Place each slot's chosen candidate at the next position; reward its DCG increment."""
        t, phase = self.t, self._phase
        # The chosen candidate's entry while the list goes on, the last position's once it is full.
        cells = np.maximum(self._cells + actions, self._floors[phase])
        # The gain left is 0.0 for a placed candidate (and for a list's entry), and the divisor
        # infinite for a full list, so that the reward is gain / log2(t + 2) for a candidate not
        # placed yet and 0.0 otherwise. The chosen candidate has no gain left after the step.
        rewards = self._left_flat[cells] / self._divisors[t]
        self._left_flat[cells] = _ZERO
        # The candidate placed: the chosen one's index if it was not placed yet, else -1 (wasted);
        # a full list reads its last position's candidate, the candidate placed last.
        last = self._ints_flat[cells]
        self._ints_flat[cells] = _NOT_OPEN
        self._open_flat[cells] = _FALSE
        self._obs_flat[self._flag_cells[cells]] = _PLACED
        # The position filled gets the candidate placed (a full list: its last position gets back
        # what it held, which the write of -1 above may have overwritten).
        self._ints_flat[self._fill_entries[phase]] = self.last = last
        self._phase = self._next_phase[phase]
        self.t = self._next_t[t]
        self._obs_flat[self._row_starts] = self._next_fractions[t]
        return rewards, self._next_full[t]

    def observe(self) -> np.ndarray:
        """A copy of every slot's observation (see :class:`RankingEnv`)."""
        return self.obs.copy()

    def action_masks(self) -> np.ndarray:
        """``(num_envs, M)``: True for the candidates not placed yet."""
        return self._open.copy()

    def step_info(self) -> dict[str, np.ndarray]:
        """The candidates' documents, the one placed last (-1 at reset or when wasted), the position and the mask."""
        # The mask here rather than by the shell's call of action_masks: the same key last, no copy.
        return {"candidates": self.candidates, "placed": self.last, "position": self.t, "action_mask": self._open}

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """NDCG@K, NDCG@5 (at min(5, K)), precision at 1, DCG@K and positions wasted on placed candidates."""
        at = slot_index(slots)
        # The candidate at each position; a wasted or unfilled position (-1) reads a zero column: no
        # gain (0.0 times its discount is 0.0, the DCG term of a position without a candidate), not
        # relevant, and not a candidate.
        cells = self._cell_rows[at] + self.order[at]
        dcg = self._gain_flat[cells] * self._discount_rows[: len(slots)]
        # A query without a relevant candidate has IDCG 0 and DCG 0 (every gain is 0): its NDCG is
        # 0 / _TINY = 0. Any positive IDCG is a sum of gains >= 2**-52 times discounts > 1 / 64, far
        # above _TINY, so it divides unchanged.
        ideal = np.maximum(self.ideal[at], _TINY)
        total = _add_reduce(dcg, 1)
        ndcg = total / ideal[:, 0]
        if self.positions <= NDCG_CUTOFF:  # the cutoff takes the whole list: the same sums (see begin)
            ndcg_at_5 = ndcg.copy()
        else:
            ndcg_at_5 = _add_reduce(dcg[:, :NDCG_CUTOFF], 1) / ideal[:, 1]
        return {
            "ndcg": ndcg,
            "ndcg_at_5": ndcg_at_5,
            "precision_at_1": self._relevant_flat[cells[:, 0]],
            "dcg": total,
            # Positions are filled in order and only below t: the others below t were wasted.
            "wasted_positions": self.t[at] - _add_reduce(self._is_candidate[cells], 1),
        }

    def text(self, slot: int) -> str:
        """The query, the list so far (title, relevance, gain per position), then the candidates left."""
        # The single env asks for this text at every step: what an episode's text needs of its
        # candidates is made once per episode, as Python lists, each filled position's line once,
        # and the list of the candidates left once per candidate placed (see _EpisodeText).
        t = self.t.item(slot)
        text = self._texts.get(slot)
        if text is None:
            header = self._headers[self.query.item(slot)]
            titles = list(map(self._titles.__getitem__, self.candidates[slot].tolist()))
            left = dict(enumerate(map(operator.add, self._candidate_labels, titles)))
            relevance, gain = self.relevance[slot].tolist(), self.gain[slot].tolist()
            text = _EpisodeText(titles, relevance, gain, header, 0, left)
            self._texts[slot] = text
        if text.filled < t:
            ranked = text.ranked
            for position in range(text.filled, t):
                candidate = self.order.item(slot, position)
                if candidate < 0:
                    ranked += self._wasted_lines[position]
                    continue
                relevance = text.relevance[candidate]
                ending = self._endings.get((relevance, position)) if relevance else None
                if ending is None:  # -0.0 and 0.0 are one key but print apart ("-0", "0"): zeros are not kept
                    ending = (
                        f" (relevance {relevance:g}, DCG +{text.gain[candidate] * self._discount_list[position]:.2f})"
                    )
                    if relevance and len(self._endings) < _ENDINGS_KEPT:
                        self._endings[relevance, position] = ending
                ranked += self._position_labels[position] + text.titles[candidate] + ending
                del text.left[candidate]
                text.to_place = None
            text.ranked, text.filled = ranked, t
        if t == self.positions:
            return text.ranked
        if text.to_place is None:  # a list not full has candidates left
            text.to_place = "\nto place:\n" + "\n".join(text.left.values())
        return text.ranked + text.to_place

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The observation with the chosen candidate marked placed and the position advanced."""
        after = np.array(observations, dtype=np.float32)
        rows = np.arange(len(after))
        after[rows, self._placed_columns[actions]] = 1.0
        after[:, 0] = np.minimum(after[:, 0] + 1.0 / self.positions, 1.0)
        return after


def _core(env: CoreVectorEnv) -> RankingCore:
    """The Ranking core behind ``env``; another env is an error that names it."""
    core = env.unwrapped.core
    if not isinstance(core, RankingCore):
        raise TypeError(
            f"this reference policy is for {RankingCore.env_id}, but the env runs {type(core).__name__}; "
            "use the reference policies of that env (nlp_envs.reference_policies(env_id))."
        )
    return core


def _best_unplaced(core: RankingCore, scores: np.ndarray) -> np.ndarray:
    """The candidate with the highest score among each slot's allowed ones (the first on ties)."""
    return np.where(allowed_acts(core.action_masks()), scores, -np.inf).argmax(axis=1)


def popular_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Places the most popular candidate left (MovieLens: most training ratings)."""
    core = _core(env)
    return _best_unplaced(core, core.data.popularity[core.documents])


def pointwise_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Places the candidate left with the highest predicted relevance of a supervised pointwise model.

    On MovieLens the model is the biased matrix factorisation fitted to the training ratings (its
    prediction is a function of the observation's user and movie factors and biases); on a user's
    files it is a ridge regression of the relevance on the features, fitted to the training
    queries. It reads no label.
    """
    core = _core(env)
    return _best_unplaced(core, core.data.pointwise[core.pairs])


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Places the most relevant candidate left; **reads the hidden labels**.

    Sorting by relevance maximises DCG@K exactly: the discounts decrease with the position, so by
    the rearrangement inequality the largest gains belong to the first positions.
    """
    core = _core(env)
    return _best_unplaced(core, core.relevance)


class RankingEnv(CoreEnv):
    """Rank a user's held-out MovieLens movies one position at a time (MDPRank), scored by DCG.

    ## Description

    Ranking as a Markov decision process, after MDPRank (Wei, Xu, Lan, Guo and Cheng,
    "Reinforcement Learning to Rank with Markov Decision Process", SIGIR 2017). A query is a
    MovieLens-100k user (read in place from the ``recbole==1.2.1`` package); its
    ``num_candidates`` (M) candidates are movies the user rated in the held-out 10% of the
    ratings, drawn uniformly and shown in a random order, so the
    relevance labels are real graded judgments: the ratings 1-5. At step ``t`` (from 1) the agent
    places one candidate at position ``t``; after ``positions`` (K, default M) steps the list is
    done. Every feature comes from the other 90% of the ratings only, so no feature holds a label.

    Users are split 4:1 into train and test queries by a fixed draw (``split``); a user needs M
    held-out ratings to be a query: 287 train and 79 test users for M = 10, 44 and 20 for M = 30.

    ## Action Space

    ``Discrete(M)``: the candidate to place next. ``info["action_mask"]`` (and
    ``env.action_masks()``) marks the candidates not placed yet. Placing an already placed
    candidate is legal but wasteful, as a masked act of Dialogue is: the position stays empty and
    earns nothing. An action outside the space raises :class:`~nlp_envs.InvalidActionError`.

    ## Observation Space

    ``Box(float32)`` of size ``12 + 13 M`` (142 for M = 10, 402 for M = 30); factors and biases lie in
    [-5, 5], the other features in [0, 1]:

    | Index             | Observation                                                          |
    |-------------------|----------------------------------------------------------------------|
    | 0                 | positions filled / K                                                 |
    | 1 .. 8            | the user's 8 factors (training fit, population standard deviations)  |
    | 9                 | the user's bias                                                      |
    | 10                | the user's mean training rating (0 for 1, 1 for 5)                   |
    | 11                | the user's activity (percentile of their number of ratings)          |
    | 12 + 13 j + 0..7  | candidate j: the movie's 8 factors                                   |
    | 12 + 13 j + 8     | candidate j: the movie's bias                                        |
    | 12 + 13 j + 9     | candidate j: popularity (percentile of its training ratings)         |
    | 12 + 13 j + 10    | candidate j: mean training rating (Bayesian average; 0 for 1, 1 for 5) |
    | 12 + 13 j + 11    | candidate j: genre match (cosine with the genres the user rated)     |
    | 12 + 13 j + 12    | candidate j: placed (0/1)                                            |

    With ``relevance_hint=s`` each candidate has one more feature before its placed flag: its
    relevance scaled to [0, 1] plus Gaussian noise of standard deviation ``s`` (clipped to +-5):
    a strong retrieval score, for easy presets.

    ## Rewards

    Placing a candidate of relevance ``r`` at position ``t`` pays its DCG increment
    ``(2**r - 1) / log2(t + 1)``, so the return is the list's DCG@K. A wasted position pays 0.

    ## Starting State

    A query drawn uniformly from the split's users, M of their held-out movies in a random order,
    nothing placed.

    ## Episode End

    1. Termination: K positions are filled.
    2. Truncation: none before that (the registered ``max_episode_steps`` is K + 1).

    ## Information

    Every step: ``action_mask``, ``candidates`` (the catalog rows of the M movies),
    ``placed`` (the candidate just placed, -1 at reset or for a wasted position) and ``position``
    (positions filled); ``env.unwrapped.core.data.titles[rows]`` decodes rows. At the end:
    ``ndcg`` (NDCG@K), ``ndcg_at_5`` (at min(5, K)), ``precision_at_1`` (the first movie is rated
    4 or 5), ``dcg`` and ``wasted_positions``. ``text`` at reset and every step (in the vector
    env at reset and at the end, with ``info_text=True``): the movie titles in ranked order with
    their ratings, then the candidates left.

    ## Afterstate

    The observation with the chosen candidate marked placed and the position advanced
    (``afterstate_space`` is the observation space).

    ## Reference policies

    ``random`` (uniform among the candidates left); ``popular`` (the most rated movie left);
    ``pointwise`` (the highest rating predicted by the training-split factor model: a supervised
    pointwise learning-to-rank baseline from the same features); ``oracle`` (sorts by the true
    ratings, **reading the hidden labels**: the exact optimum of DCG). Test split, 1,000 episodes
    (``nlp_envs.evaluate(..., episodes=1000, seed=0, env_kwargs={"split": "test"})``):

    | env (M)      | policy    | DCG@K (return) | NDCG@K | NDCG@5 | P@1   |
    |--------------|-----------|----------------|--------|--------|-------|
    | Ranking (10) | random    | 62.98          | 0.811  | 0.630  | 0.541 |
    | Ranking (10) | popular   | 66.20          | 0.856  | 0.722  | 0.677 |
    | Ranking (10) | pointwise | 70.59          | 0.911  | 0.821  | 0.844 |
    | Ranking (10) | oracle    | 76.92          | 1.000  | 1.000  | 0.992 |
    | Ranking30    | random    | 108.74         | 0.778  | 0.466  | 0.488 |
    | Ranking30    | popular   | 119.29         | 0.854  | 0.627  | 0.813 |
    | Ranking30    | pointwise | 123.45         | 0.886  | 0.729  | 0.947 |
    | Ranking30    | oracle    | 138.49         | 1.000  | 1.000  | 1.000 |

    The pointwise baseline's normalised score is 0.55 on Ranking-v0 and 0.49 on Ranking30-v0: the
    factor model knows much, but far from all, of a user's ordering. The project's ``dqn`` agent
    (default hyper-parameters, 16 train-split envs, 50k steps) reaches 67.40 (0.32) on Ranking-v0:
    it does not beat the pointwise baseline from the same features at that budget. Neither a wider
    network (256 x 256: 0.29) nor a myopic target (``gamma=0``, right for DCG, whose optimum is
    greedy: 0.36) closes the gap: the MLP scores each of the M candidate blocks with weights of its
    own and must learn the factor model's user-movie products, where MDPRank's scorer is one
    function shared by all candidates.

    ## Arguments

    ``num_candidates=10`` (M), ``positions=None`` (K; None for M), ``split="train"`` (or
    ``"test"``, ``"all"``), ``relevance_hint=None``, ``render_mode=None`` or ``"ansi"``, and, for
    a user's own LETOR-style data, ``judgments`` (a ``.csv``/``.jsonl`` file with the columns
    ``query``, ``document``, ``relevance``: a number from 0 to 30) together with ``features`` (a
    file with a ``document`` column, an optional ``title``, and numeric feature columns, one row
    per document; standardised and clipped to +-5). Then the observation is the position and the
    candidates' features and placed flags; a document counts as relevant from relevance 1;
    ``popular`` ranks by the number of relevant training judgments and ``pointwise`` by a ridge
    regression of relevance on the features fitted to the training queries.

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/Ranking-v0", render_mode="ansi")
    >>> env.observation_space.shape, env.action_space
    ((142,), Discrete(10))
    >>> observation, info = env.reset(seed=7)
    >>> env.unwrapped.core.data.titles[info["candidates"][[3, 9]]].tolist()
    ['Raiders of the Lost Ark (1981)', 'Alien (1979)']
    >>> observation, reward, terminated, truncated, info = env.step(9)
    >>> reward, bool(info["action_mask"][9])
    (31.0, False)
    >>> observation, reward, terminated, truncated, info = env.step(3)
    >>> round(reward, 2), int(info["position"])
    (9.46, 2)
    >>> for line in env.render().splitlines()[:3]:
    ...     print(line)
    ml-100k, query user 94: 10 positions for 10 candidates
      1. Alien (1979) (relevance 5, DCG +31.00)
      2. Raiders of the Lost Ark (1981) (relevance 4, DCG +9.46)

    The user rated Alien 5 (gain 31 at position 1) and Raiders 4 (gain 15, discounted by log2(3)).

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/Ranking-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    gives :class:`RankingVectorEnv`, the same core over N slots (see :mod:`nlp_envs.core` for
    seeding and autoreset). An episode's query, candidates and hint noise are each a function of
    its episode key alone.

    ## Presets

    ``nlp_envs/Ranking-v0`` (M = K = 10), ``nlp_envs/Ranking30-v0`` (M = K = 30) and
    ``nlp_envs/RankingEasy-v0`` (M = K = 4 with ``relevance_hint=0.1``, where the project's
    ``dqn`` agent, trained 30k steps on 16 train-split envs, scores 0.95 normalised on the test
    split; random 35.95, pointwise 38.24, oracle 40.85).

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = RankingCore


class RankingVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`RankingEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = RankingCore
    reference_policies: ClassVar[dict[str, Any]] = {
        "random": random_policy,
        "popular": popular_policy,
        "pointwise": pointwise_policy,
        "oracle": oracle_policy,
    }
