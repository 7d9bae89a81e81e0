"""Ranking-v0: DCG rewards, the oracle's optimality, masks, metrics, splits, user files, the easy preset."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
import nlp_envs.ranking
from nlp_envs.core import InvalidActionError, hashes_to_uniform, random_integers
from nlp_envs.data.files import DataFileError
from nlp_envs.data.judgments import movielens_judgments
from nlp_envs.data.movielens import fit_factors, heldout_mask, load_ratings
from nlp_envs.data.simulator import FACTOR_BOUND
from nlp_envs.ranking import _NOISE_BOUND, _TOP_BITS, RankingCore, discounts, gains
from tests.conftest import make_vec

ENV_ID = "nlp_envs/Ranking-v0"
EASY = "nlp_envs/RankingEasy-v0"


def write_table(path: Path, rows: list[dict[str, object]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def letor(tmp_path: Path) -> tuple[Path, Path]:
    """30 queries x 6 judged documents of 40; relevance 0-2 follows the first of two features."""
    rng = np.random.default_rng(0)
    quality = rng.normal(size=40)
    features = [
        {
            "document": f"d{d}",
            "title": f"Document {d}",
            "bm25": round(float(quality[d]), 4),
            "noise": round(float(rng.normal()), 4),
        }
        for d in range(40)
    ]
    judgments = [
        {"query": f"q{q}", "document": f"d{d}", "relevance": int(np.digitize(quality[d], [-0.4, 0.6]))}
        for q in range(30)
        for d in rng.choice(40, size=6, replace=False)
    ]
    return write_table(tmp_path / "qrels.csv", judgments), write_table(tmp_path / "features.csv", features)


def run_to_end(env, policy: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns and final infos of one episode per slot under a reference policy (one episode each)."""
    observations, _ = env.reset(seed=0)
    returns = np.zeros(env.num_envs)
    act = nlp_envs.reference_policy(ENV_ID, policy)
    while True:
        observations, rewards, terminated, truncated, infos = env.step(act(observations, env))
        returns += rewards
        if terminated.all():
            return returns, infos


# --- the data and the MDP -----------------------------------------------------------------------


def test_candidates_are_held_out_ratings_and_features_come_from_training_only() -> None:
    data, ratings, model = movielens_judgments(), load_ratings(), fit_factors()
    held_out = heldout_mask(len(ratings.ratings))
    judged = set(zip(ratings.users[held_out].tolist(), ratings.items[held_out].tolist(), strict=True))
    query_users = [int(name.split()[1]) - 1 for name in data.query_names]
    pair_users = np.repeat(query_users, np.diff(data.offsets))
    assert set(zip(pair_users.tolist(), data.documents.tolist(), strict=True)) == judged
    lookup = {
        (u, i): r
        for u, i, r in zip(ratings.users.tolist(), ratings.items.tolist(), ratings.ratings.tolist(), strict=True)
    }
    np.testing.assert_array_equal(
        data.relevance, [lookup[pair] for pair in zip(pair_users.tolist(), data.documents.tolist(), strict=True)]
    )
    np.testing.assert_allclose(data.pointwise, model.predict(pair_users, data.documents))
    # Popularity counts training ratings only: an item rated once, in the held-out split, has the lowest.
    train_counts = np.bincount(ratings.items[~held_out], minlength=ratings.num_items)
    assert data.popularity[train_counts == 0].max() < data.popularity[train_counts > 0].min()
    assert not (data.test[: len(data.test)]).all() and data.test.any()


def test_rewards_are_dcg_increments_and_the_return_is_dcg(rng: np.random.Generator) -> None:
    env = make_vec(ENV_ID, 8)
    core: RankingCore = env.unwrapped.core
    env.reset(seed=4)
    relevance = core.relevance.copy()
    orders = np.stack([rng.permutation(10) for _ in range(8)])
    returns = np.zeros(8)
    for t in range(10):
        _, rewards, terminated, truncated, infos = env.step(orders[:, t])
        np.testing.assert_allclose(rewards, gains(relevance[np.arange(8), orders[:, t]]) / np.log2(t + 2))
        returns += rewards
        assert terminated.all() == (t == 9) and not truncated.any()
    np.testing.assert_allclose(infos["dcg"], returns)
    ideal = (gains(-np.sort(-relevance, axis=1)) * discounts(10)).sum(axis=1)
    np.testing.assert_allclose(infos["ndcg"], returns / ideal)
    first = relevance[np.arange(8), orders[:, 0]]
    np.testing.assert_array_equal(infos["precision_at_1"], first >= 4)
    top5 = (gains(relevance[np.arange(8)[:, None], orders[:, :5]]) * discounts(5)).sum(axis=1)
    np.testing.assert_allclose(
        infos["ndcg_at_5"], top5 / (gains(-np.sort(-relevance, axis=1))[:, :5] * discounts(5)).sum(axis=1)
    )


def test_every_reward_and_metric_of_random_play_equals_its_definition(rng: np.random.Generator) -> None:
    """Repeated candidates (wasted positions) and steps past a full list: rewards and metrics, exactly, slot by slot."""
    core = RankingCore(6, num_candidates=6, positions=4)
    slots, rows = np.arange(6), np.arange(6)
    for episode in range(30):
        core.begin(slots, np.arange(6, dtype=np.uint64) + np.uint64(100 * episode))
        relevance, placed, returns = core.relevance.copy(), np.zeros((6, 6), dtype=bool), np.zeros(6)
        for t in range(6):  # two steps past the end of every list
            actions = rng.integers(3, size=6)  # three candidates for four positions: some wasted
            fresh = (t < 4) & ~placed[rows, actions]
            rewards, terminated = core.advance(actions)
            assert (rewards == np.where(fresh, gains(relevance[rows, actions]) / np.log2(t + 2), 0.0)).all()
            assert terminated.all() == (t >= 3) and terminated.any() == (t >= 3)
            placed[rows[fresh], actions[fresh]] = True
            returns += rewards
            np.testing.assert_array_equal(core.placed, placed)
            np.testing.assert_array_equal(core.action_masks(), ~placed)
            metrics = core.metrics(slots)
            if t == 3:
                ended = metrics
                np.testing.assert_allclose(metrics["dcg"], returns, rtol=1e-15)
                assert (metrics["wasted_positions"] == 4 - placed.sum(axis=1)).all()
            if t > 3:  # the full lists stay as they were
                for key, values in ended.items():
                    np.testing.assert_array_equal(metrics[key], values)
        assert (placed.sum(axis=1) < 4).any()  # some positions were wasted


@pytest.mark.parametrize("positions", [3, 5, 6, 8])
def test_ideal_dcg_and_ndcg_at_both_cutoffs_equal_their_sums_exactly(positions: int, rng: np.random.Generator) -> None:
    """Lists of at most 5 positions (one sum serves both cutoffs) and longer ones: the same values, bit for bit."""
    core = RankingCore(5, num_candidates=8, positions=positions)
    slots, rows = np.arange(5), np.arange(5)[:, None]
    for episode in range(10):
        core.begin(slots, np.arange(5, dtype=np.uint64) + np.uint64(7 * episode))
        orders = np.stack([rng.permutation(8)[:positions] for _ in range(5)])
        for t in range(positions):
            core.advance(orders[:, t])
        terms = gains(-np.sort(-core.relevance, axis=1))[:, :positions] * discounts(positions)
        ideal = np.column_stack([terms.sum(axis=1), terms[:, :5].sum(axis=1)])
        np.testing.assert_array_equal(core.ideal, ideal)
        dcg = gains(core.relevance[rows, orders]) * discounts(positions)
        metrics = core.metrics(slots)
        np.testing.assert_array_equal(metrics["ndcg"], dcg.sum(axis=1) / ideal[:, 0])
        np.testing.assert_array_equal(metrics["ndcg_at_5"], dcg[:, :5].sum(axis=1) / ideal[:, 1])
        assert metrics["ndcg_at_5"] is not metrics["ndcg"]


def test_metrics_of_unfilled_and_wasted_positions_read_no_other_candidate() -> None:
    """Before any step and with a wasted position, the metrics count only the filled positions' candidates."""
    core = RankingCore(3, num_candidates=5, positions=4)
    slots = np.arange(3)
    core.begin(slots, np.array([11, 12, 13], dtype=np.uint64))
    metrics = core.metrics(slots)
    for key in ("ndcg", "ndcg_at_5", "precision_at_1", "dcg", "wasted_positions"):
        np.testing.assert_array_equal(metrics[key], 0)
    core.advance(np.array([4, 0, 2]))
    core.advance(np.array([4, 1, 2]))  # slots 0 and 2 waste their second position
    metrics = core.metrics(slots)
    first, second = core.gain[slots, [4, 0, 2]], np.array([0.0, core.gain[1, 1], 0.0])
    np.testing.assert_array_equal(metrics["dcg"], first * discounts(4)[0] + second * discounts(4)[1])
    np.testing.assert_array_equal(metrics["precision_at_1"], core.relevance[slots, [4, 0, 2]] >= 4)
    np.testing.assert_array_equal(metrics["wasted_positions"], [1, 0, 1])


def test_the_query_is_random_integers_draw_from_counter_0_of_the_episode_hash() -> None:
    """begin takes the query from its one hash call: the very draw of random_integers(keys, queries, 0)."""
    core = RankingCore(64, relevance_hint=0.5)
    keys = np.random.default_rng(3).integers(0, 2**63, size=64, dtype=np.uint64) * np.uint64(2)
    core.begin(np.arange(64), keys)
    np.testing.assert_array_equal(core.query, core.queries[random_integers(keys, len(core.queries), 0)])
    assert len(set(core.query.tolist())) > 40  # the draws spread over the split, as they did


def test_the_mask_is_handed_out_as_copies_and_the_zero_columns_stay_zero() -> None:
    """step_info hands the core's own mask: every view's info and action_masks() are copies of it."""
    env = make_vec(EASY, 8)
    core: RankingCore = env.unwrapped.core
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(60):  # episodes of 4 steps, some positions wasted, restarts in the batch
        _, _, _, _, infos = env.step(rng.integers(4, size=8))
        mask = core.action_masks()
        np.testing.assert_array_equal(infos["action_mask"], mask)
        np.testing.assert_array_equal(core.placed, ~mask)
        infos["action_mask"][:] = False
        mask[:] = False
        assert core.action_masks().any()
    # What a position without a candidate reads: never written by a begin or a step.
    np.testing.assert_array_equal(core._values[:, :, -1], 0.0)
    single = gym.make(EASY)
    _, info = single.reset(seed=2)
    info["action_mask"][:] = False
    single.unwrapped.action_masks()[:] = False
    _, _, _, _, info = single.step(1)
    np.testing.assert_array_equal(info["action_mask"], [True, False, True, True])


@pytest.mark.parametrize(("candidates", "positions"), [(4, 4), (5, 3), (6, 6)])
def test_oracle_is_optimal_against_brute_force_over_all_orderings(candidates: int, positions: int) -> None:
    env = make_vec(ENV_ID, 6, num_candidates=candidates, positions=positions)
    oracle_returns, _ = run_to_end(env, "oracle")
    relevance = env.unwrapped.core.relevance  # the episodes just played (no autoreset yet)
    best = np.array(
        [
            max(
                (gains(row[list(order)]) * discounts(positions)).sum()
                for order in itertools.permutations(range(candidates), positions)
            )
            for row in relevance
        ]
    )
    np.testing.assert_allclose(oracle_returns, best)
    random_returns, _ = run_to_end(env, "random")
    assert (random_returns <= best + 1e-9).all()


def test_placed_candidates_are_masked_and_placing_one_again_wastes_the_position() -> None:
    env = gym.make(ENV_ID)
    _, info = env.reset(seed=1)
    assert info["action_mask"].all()
    _, first, *_ = env.step(3)
    assert first > 0
    mask = env.unwrapped.action_masks()
    assert not mask[3] and mask.sum() == 9
    _, reward, terminated, _, info = env.step(3)
    assert reward == 0.0 and not terminated and info["placed"] == -1 and info["position"] == 2
    assert "(wasted" in info["text"]
    for action in range(10):
        *_, terminated, truncated, info = env.step(action)
        if terminated:
            break
    assert info["wasted_positions"] == 2  # action 3 twice more: at step 2 and again in the loop
    with pytest.raises(InvalidActionError, match="Ranking"):
        env.step(10)


def test_text_lists_the_titles_in_ranked_order_and_render_matches() -> None:
    env = gym.make(ENV_ID, render_mode="ansi")
    _, info = env.reset(seed=2)
    titles = env.unwrapped.core.data.titles[info["candidates"]]
    for action in (7, 2):
        _, _, _, _, info = env.step(action)
    lines = env.render().splitlines()
    assert lines[1].startswith(f"  1. {titles[7]} (relevance ") and lines[2].startswith(f"  2. {titles[2]} ")
    assert info["text"] == env.render()
    assert lines[3] == "to place:" and len(lines) == 4 + 8
    # The next episode's text is its own (the candidates' titles are kept per episode, not per slot).
    _, info = env.reset()
    titles = env.unwrapped.core.data.titles[info["candidates"]]
    assert info["text"].splitlines()[2:] == [f"  [{j}] {title}" for j, title in enumerate(titles)]
    _, _, _, _, info = env.step(4)
    assert info["text"].splitlines()[1].startswith(f"  1. {titles[4]} (relevance ")


def test_text_kept_from_step_to_step_equals_the_text_made_afresh(rng: np.random.Generator) -> None:
    """The lines kept per episode, also over steps whose text nobody asked for, equal a text made from scratch."""
    env = make_vec(ENV_ID, 3, num_candidates=12, positions=9)
    core: RankingCore = env.unwrapped.core
    env.reset(seed=3)
    wasted = 0
    for step in range(90):
        env.step(rng.integers(12, size=3))  # placed candidates too: wasted positions
        if step % 3:  # no text asked: the next text catches up on several positions
            continue
        for slot in range(3):
            kept = core.text(slot)
            del core._texts[slot]
            assert kept == core.text(slot)
            wasted += kept.count("(wasted")
    assert wasted > 0


def text_from_scratch(core: RankingCore, slot: int) -> str:
    """The slot's text made from its state alone: the placed flags (not the order) list the candidates left."""
    titles = core.data.titles[core.candidates[slot]]
    lines = [
        f"{core.data.name}, query {core.data.query_names[core.query[slot]]}: "
        f"{core.positions} positions for {core.num_candidates} candidates"
    ]
    for position in range(int(core.t[slot])):
        j = int(core.order[slot, position])
        lines.append(
            f"{position + 1:3d}. (wasted: an already placed candidate)"
            if j < 0
            else f"{position + 1:3d}. {titles[j]} (relevance {core.relevance[slot, j]:g}, "
            f"DCG +{core.gain[slot, j] * discounts(core.positions)[position]:.2f})"
        )
    if core.t[slot] < core.positions:
        lines += ["to place:", *(f"  [{j}] {titles[j]}" for j in np.flatnonzero(~core.placed[slot]))]
    return "\n".join(lines)


@pytest.mark.parametrize(("env_id", "kwargs"), [(ENV_ID, {}), (ENV_ID, {"positions": 4}), (EASY, {})])
def test_text_grown_step_by_step_equals_the_text_made_from_the_state(
    env_id: str, kwargs: dict, rng: np.random.Generator
) -> None:
    """The single env's text, kept and grown at every step over many episodes, equals one made from the state."""
    env = gym.make(env_id, **kwargs)
    core: RankingCore = env.unwrapped.core
    _, info = env.reset(seed=1)
    wasted = 0
    for _ in range(300):
        assert info["text"] == text_from_scratch(core, 0)
        wasted += info["text"].count("(wasted")
        # Mostly candidates left, sometimes a placed one (a wasted position).
        left = np.flatnonzero(info["action_mask"])
        action = int(rng.choice(left)) if rng.random() < 0.8 else int(rng.integers(core.num_candidates))
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            assert info["text"] == text_from_scratch(core, 0)
            _, info = env.reset()
    assert wasted > 0


def test_line_endings_kept_across_episodes_print_as_made_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    """Endings kept by (relevance, position): -0 and 0 print apart; past the limit, lines are formatted afresh."""
    monkeypatch.setattr(nlp_envs.ranking, "_ENDINGS_KEPT", 5)
    relevance = ["-0", "0", "0.5", "1", "2.25", "3", "0", "-0"]
    judgments = [
        {"query": f"q{q}", "document": f"d{d}", "relevance": relevance[(q + d) % 8]}
        for q in range(10)
        for d in range(8)
    ]
    features = [{"document": f"d{d}", "f": d} for d in range(8)]
    env = gym.make(
        ENV_ID,
        num_candidates=8,
        split="all",
        judgments=str(write_table(tmp_path / "qrels.csv", judgments)),
        features=str(write_table(tmp_path / "features.csv", features)),
    )
    core: RankingCore = env.unwrapped.core
    _, info = env.reset(seed=2)
    shown = ""
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        assert info["text"] == text_from_scratch(core, 0)
        shown += info["text"]
        if terminated or truncated:
            _, info = env.reset()
    assert "(relevance -0," in shown and "(relevance 0," in shown and "(relevance 2.25," in shown
    assert len(core._endings) == 5


@pytest.mark.parametrize(("actions", "past"), [((2, 2, 0, 1), (3, 1)), ((2, 0, 1, 1), (3, 3, 0))])
def test_a_step_past_the_end_changes_nothing(actions: tuple[int, ...], past: tuple[int, ...]) -> None:
    """A full list stays as it is, its last position filled or wasted, whether the act names a candidate left or not.

    (A step past the end reads and writes its list's last entry, which it writes back unchanged.)
    """
    env = gym.make(EASY)
    env.reset(seed=5)
    for action in actions:
        observation, _, terminated, _, info = env.step(action)
    assert terminated and int(info["placed"]) == (-1 if actions[-1] in actions[:-1] else actions[-1])
    core: RankingCore = env.unwrapped.core
    order, text = core.order.copy(), info["text"]
    for action in past:
        again, reward, terminated, _, info_again = env.step(action)
        assert reward == 0.0 and terminated
        np.testing.assert_array_equal(again, observation)
        np.testing.assert_array_equal(core.order, order)
        assert info_again["text"] == text
        for key in ("placed", "position", "dcg", "ndcg", "wasted_positions"):
            assert info_again[key] == info[key], key
        np.testing.assert_array_equal(info_again["action_mask"], info["action_mask"])


def test_observation_layout_and_afterstate() -> None:
    env = make_vec(ENV_ID, 3)
    core: RankingCore = env.unwrapped.core
    observations, infos = env.reset(seed=2)
    data = core.data
    np.testing.assert_allclose(observations[:, 1:12], data.query_features[core.query])
    blocks = observations[:, 12:].reshape(3, 10, 13)
    np.testing.assert_allclose(blocks[:, :, :11], data.document_features[infos["candidates"]])
    np.testing.assert_allclose(blocks[:, :, 11], data.pair_features[core.pairs][:, :, 0])
    assert (blocks[:, :, 12] == 0).all() and (observations[:, 0] == 0).all()
    actions = np.array([0, 4, 9])
    afterstates = env.unwrapped.afterstate(observations, actions)
    following, *_ = env.step(actions)
    np.testing.assert_allclose(afterstates, following)


@pytest.mark.parametrize("hint", [0.1, 0.46, 0.5, 3.0])
def test_the_hint_is_clipped_exactly_where_a_clip_can_change_it(hint: float) -> None:
    """Below the noise level where a hint can leave +-FACTOR_BOUND the clip is skipped, and skipping changes nothing."""
    largest = ((np.iinfo(np.uint64).max >> 11) * 2.0**-53,)  # the largest uniform draw (hashes_to_uniform)
    assert np.sqrt(-2.0 * np.log1p(-np.array(largest))) < _NOISE_BOUND
    skipped, clipped = RankingCore(300, relevance_hint=hint), RankingCore(300, relevance_hint=hint)
    assert skipped._clip_hint == (1.0 + hint * _NOISE_BOUND >= FACTOR_BOUND)
    clipped._clip_hint = True
    slots, keys = np.arange(300), np.arange(300, dtype=np.uint64) * np.uint64(7919)
    skipped.begin(slots, keys)
    clipped.begin(slots, keys)
    np.testing.assert_array_equal(skipped.observe(), clipped.observe())
    hints = clipped.observe()[:, 12:].reshape(300, 10, 14)[:, :, 12]
    assert (np.abs(hints) <= FACTOR_BOUND).all()
    if hint == 3.0:  # noise this large leaves the bound: the clip is on and does clip
        assert skipped._clip_hint and (np.abs(hints) == FACTOR_BOUND).any()


@pytest.mark.parametrize(
    "kwargs", [{"num_candidates": 4, "relevance_hint": 0.1}, {"num_candidates": 30, "split": "all"}]
)
def test_the_pool_columns_past_a_query_s_documents_from_the_table_or_compared_alike(kwargs: dict) -> None:
    """begin reads the columns past each query's documents from a table by count, or compares them for a wide pool."""
    table, compared = RankingCore(300, **kwargs), RankingCore(300, **kwargs)
    assert table._beyond is not None and table._beyond.shape == (table._pool_width + 1, table._pool_width)
    compared._beyond = None  # as a pool of _BEYOND_WIDTH columns or more has it
    slots, keys = np.arange(300), np.arange(300, dtype=np.uint64) * np.uint64(7919)
    table.begin(slots, keys)
    compared.begin(slots, keys)
    np.testing.assert_array_equal(table.pairs, compared.pairs)
    np.testing.assert_array_equal(table.observe(), compared.observe())
    counts = np.diff(table.data.offsets)[table.query]
    assert (table.pairs - table.data.offsets[table.query][:, None] < counts[:, None]).all()
    assert (counts < table._pool_width).any()  # some queries have columns past their documents


def test_the_box_muller_arguments_are_minus_u_and_two_pi_u_of_hashes_to_uniform(rng: np.random.Generator) -> None:
    """begin scales the hashes' top 53 bits once: the values -u and 2 pi u of hashes_to_uniform's u, bit for bit."""
    core = RankingCore(20, num_candidates=4, relevance_hint=0.1)
    hashes = rng.integers(0, 2**64, size=(20, 8), dtype=np.uint64, endpoint=False)
    hashes[0] = np.iinfo(np.uint64).max  # the largest draw, and the smallest
    hashes[1] = 0
    arguments = (hashes >> _TOP_BITS).astype(np.float64) * core._box_muller_rows[:20]
    uniform = hashes_to_uniform(hashes)
    expected = np.concatenate([-uniform[:, :4], 2.0 * np.pi * uniform[:, 4:]], axis=1)
    assert arguments.tobytes() == expected.tobytes()


def test_pointwise_is_a_function_of_the_observation() -> None:
    """The pointwise baseline uses the same features the agent sees: factors and biases in the observation."""
    env = make_vec(ENV_ID, 4)
    core: RankingCore = env.unwrapped.core
    observations, _ = env.reset(seed=3)
    model = fit_factors()
    item_scale = (
        model.item_factors[np.bincount(load_ratings().items[~heldout_mask(100_000)], minlength=1682) > 0].std(axis=0)
        + 1e-9
    )
    user_scale = model.user_factors.std(axis=0) + 1e-9
    users = observations[:, 1:9] * user_scale
    blocks = observations[:, 12:].reshape(4, 10, 13)
    predicted = (
        model.mean
        + observations[:, 9:10]
        + blocks[:, :, 8]
        + np.einsum("nd,nkd->nk", users, blocks[:, :, :8] * item_scale)
    )
    np.testing.assert_allclose(predicted, core.data.pointwise[core.pairs], atol=1e-4)


def test_reference_policies_order_on_the_test_split() -> None:
    scores = {
        name: nlp_envs.evaluate(ENV_ID, name, episodes=300, seed=0, env_kwargs={"split": "test"})
        for name in ("random", "popular", "pointwise", "oracle")
    }
    ndcg = {name: result.metrics["ndcg"] for name, result in scores.items()}
    assert ndcg["random"] < ndcg["popular"] < ndcg["pointwise"] < ndcg["oracle"] == pytest.approx(1.0)
    assert scores["pointwise"].metrics["precision_at_1"] > scores["random"].metrics["precision_at_1"] + 0.2
    for result in scores.values():
        np.testing.assert_allclose(result.mean_return, result.metrics["dcg"])


def test_splits_hold_disjoint_users_and_the_larger_preset_has_30_candidates() -> None:
    train, test = (make_vec(ENV_ID, 64, split=split) for split in ("train", "test"))
    train.reset(seed=0)
    test.reset(seed=0)
    assert not set(train.unwrapped.core.queries) & set(test.unwrapped.core.queries)
    assert set(test.unwrapped.core.query) <= set(test.unwrapped.core.queries)
    large = gym.make("nlp_envs/Ranking30-v0")
    assert large.action_space.n == 30 and large.observation_space.shape == (12 + 13 * 30,)


def test_same_seed_same_episode_whatever_the_batch() -> None:
    small, large = make_vec(ENV_ID, 2), make_vec(ENV_ID, 5)
    first, _ = small.reset(seed=8)
    second, _ = large.reset(seed=8)
    np.testing.assert_array_equal(first, second[:2])
    single = gym.make(ENV_ID)
    observation, _ = single.reset(seed=9)
    np.testing.assert_array_equal(observation, first[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_candidates": 1}, "num_candidates must be an integer >= 2"),
        ({"num_candidates": 200}, "no query of the 'train' split of ml-100k has num_candidates=200"),
        ({"positions": 11}, "positions=11 exceeds num_candidates=10"),
        ({"positions": 0}, "positions must be an integer >= 1"),
        ({"split": "dev"}, "split='dev' is not one of"),
        ({"relevance_hint": -1.0}, "relevance_hint must be None or a finite number >= 0"),
        ({"judgments": "qrels.csv"}, "judgments and features go together"),
    ],
    ids=["one-candidate", "too-many", "positions-over-m", "no-positions", "split", "hint", "judgments-alone"],
)
def test_bad_kwargs_say_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


# --- user data ----------------------------------------------------------------------------------


def test_user_judgments_and_features_build_an_env(letor: tuple[Path, Path]) -> None:
    judgments, features = letor
    kwargs = {"judgments": str(judgments), "features": str(features), "num_candidates": 5, "split": "all"}
    env = gym.make(ENV_ID, render_mode="ansi", **kwargs)
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation) and observation.shape == (1 + 5 * 3,)
    assert "Document " in info["text"] and "q" in info["text"].splitlines()[0]
    oracle = nlp_envs.evaluate(ENV_ID, "oracle", episodes=50, seed=0, env_kwargs=kwargs)
    pointwise = nlp_envs.evaluate(ENV_ID, "pointwise", episodes=50, seed=0, env_kwargs=kwargs)
    random = nlp_envs.evaluate(ENV_ID, "random", episodes=50, seed=0, env_kwargs=kwargs)
    assert oracle.metrics["ndcg"] == pytest.approx(1.0)
    assert pointwise.metrics["ndcg"] > 0.95  # relevance follows the bm25 column
    assert random.metrics["ndcg"] < pointwise.metrics["ndcg"]
    nlp_envs.evaluate(ENV_ID, "popular", episodes=10, seed=0, env_kwargs=kwargs)


def test_a_query_without_a_relevant_candidate_has_ndcg_0(tmp_path: Path) -> None:
    """IDCG 0 (every candidate of relevance 0): NDCG and NDCG@5 are 0, not NaN; a query with gains scores > 0."""
    features = write_table(tmp_path / "features.csv", [{"document": f"d{d}", "score": float(d)} for d in range(4)])
    judgments = write_table(
        tmp_path / "qrels.csv",
        [{"query": "none", "document": f"d{d}", "relevance": 0} for d in range(3)]
        + [{"query": "some", "document": f"d{d}", "relevance": d % 2} for d in range(1, 4)],
    )
    env = make_vec(ENV_ID, 16, judgments=str(judgments), features=str(features), num_candidates=3, split="all")
    core: RankingCore = env.unwrapped.core
    env.reset(seed=0)
    empty = core.ideal[:, 0] == 0
    assert empty.any() and not empty.all()
    for t in range(3):
        _, _, terminated, _, infos = env.step(np.full(16, t))
    assert terminated.all()
    np.testing.assert_array_equal(infos["ndcg"][empty], 0.0)
    np.testing.assert_array_equal(infos["ndcg_at_5"][empty], 0.0)
    np.testing.assert_array_equal(infos["dcg"][empty], 0.0)
    assert (infos["ndcg"][~empty] > 0).all() and np.isfinite(infos["ndcg"]).all()


def test_user_jsonl_files_work(tmp_path: Path, letor: tuple[Path, Path]) -> None:
    judgments, features = letor
    converted = []
    for path in (judgments, features):
        with open(path, encoding="utf-8") as source:
            converted.append(write_table(tmp_path / f"{path.stem}.jsonl", list(csv.DictReader(source))))
    env = gym.make(ENV_ID, judgments=str(converted[0]), features=str(converted[1]), num_candidates=6, split="all")
    assert env.reset(seed=0)[0].shape == (1 + 6 * 3,)


@pytest.mark.parametrize(
    ("which", "row", "message"),
    [
        (
            "judgments",
            {"query": "q1", "document": "d0", "relevance": "high"},
            r"qrels\.csv'?: row 1 has relevance 'high'; expected a finite number",
        ),
        (
            "judgments",
            {"query": "q1", "document": "d0", "relevance": -1},
            r"row 1 has relevance '-1'; expected a number from 0 to 30",
        ),
        (
            "judgments",
            {"query": "q1", "document": "d99", "relevance": 1},
            r"row 1 judges document 'd99', which has no row in the features file",
        ),
        ("judgments", {"query": "q1", "doc": "d0", "relevance": 1}, r"qrels\.csv'?: row 1 has no column 'document'"),
        (
            "features",
            {"document": "d0", "bm25": "n/a"},
            r"features\.csv'?: row 1 has bm25 'n/a'; expected a finite number",
        ),
        ("features", {"document": "d0", "title": "only a title"}, r"features\.csv'? has no feature column"),
        ("features", {"doc": "d0", "bm25": 1.0}, r"features\.csv'?: row 1 has no column 'document'"),
    ],
    ids=[
        "relevance-text",
        "relevance-negative",
        "unknown-document",
        "judgments-column",
        "feature-text",
        "no-feature",
        "features-column",
    ],
)
def test_malformed_user_files_name_file_and_row(tmp_path: Path, which: str, row: dict, message: str) -> None:
    good_judgments = [
        {"query": "q1", "document": "d0", "relevance": 1},
        {"query": "q1", "document": "d1", "relevance": 0},
    ]
    good_features = [{"document": "d0", "bm25": 1.0}, {"document": "d1", "bm25": 0.0}]
    judgments = write_table(tmp_path / "qrels.csv", [row] if which == "judgments" else good_judgments)
    features = write_table(tmp_path / "features.csv", [row] if which == "features" else good_features)
    with pytest.raises(DataFileError, match=message):
        gym.make(ENV_ID, judgments=str(judgments), features=str(features), num_candidates=2, split="all")


def test_repeated_pairs_and_documents_and_too_few_candidates_are_refused(tmp_path: Path) -> None:
    features = write_table(tmp_path / "features.csv", [{"document": "d0", "bm25": 1}, {"document": "d1", "bm25": 2}])
    twice = write_table(
        tmp_path / "qrels.csv",
        [{"query": "q", "document": "d0", "relevance": 1}, {"query": "q", "document": "d0", "relevance": 2}],
    )
    with pytest.raises(DataFileError, match="row 2 judges query 'q' and document 'd0' again"):
        gym.make(ENV_ID, judgments=str(twice), features=str(features), num_candidates=2, split="all")
    repeated = write_table(tmp_path / "repeated.csv", [{"document": "d0", "bm25": 1}, {"document": "d0", "bm25": 2}])
    with pytest.raises(DataFileError, match="row 2 repeats document 'd0'"):
        gym.make(ENV_ID, judgments=str(twice), features=str(repeated), num_candidates=2, split="all")
    single = write_table(tmp_path / "single.csv", [{"query": "q", "document": "d0", "relevance": 1}])
    with pytest.raises(
        DataFileError,
        match=r"'all' split of judgments file .*single\.csv' has num_candidates=2 .* \(the most any query has is 1\)",
    ):
        gym.make(ENV_ID, judgments=str(single), features=str(features), num_candidates=2, split="all")


def test_a_suite_hashes_the_judgments_and_features_files(tmp_path: Path, letor: tuple[Path, Path]) -> None:
    """An edited judgments file is a new leaderboard cell, as for every task's user data."""
    from nlp_envs.leaderboard.suites import load_suite

    judgments, features = letor
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "mine"\nseeds = 1\nsteps = 10\n\n[[envs]]\nid = "nlp_envs/Ranking-v0"\n'
        f'kwargs = {{ judgments = "{judgments.name}", features = "{features.name}", num_candidates = 5 }}\n\n'
        "[agents.random]\n",
        encoding="utf-8",
    )
    (before,) = load_suite(str(suite)).cells()
    assert set(before.config["data_hashes"]) == {"judgments", "features"}
    assert before.env.kwargs["judgments"] == str(judgments.resolve())
    judgments.write_text(judgments.read_text(encoding="utf-8") + "q0,d39,2\n", encoding="utf-8")
    (after,) = load_suite(str(suite)).cells()
    assert after.key != before.key


# --- learning -----------------------------------------------------------------------------------


def test_dqn_reaches_0_9_on_the_easy_preset() -> None:
    import torch

    import nlp_agents

    torch.set_num_threads(1)
    env = make_vec(EASY, 16, split="train")
    agent = nlp_agents.make("dqn", env, seed=0, device="cpu").learn(30_000)
    result = nlp_envs.evaluate(EASY, agent, episodes=500, seed=0, env_kwargs={"split": "test"})
    assert result.normalized_score >= 0.9, result.normalized_score


def test_judgments_edited_within_one_process_are_read_again(tmp_path: Path, letor: tuple[Path, Path]) -> None:
    """The process cache is keyed by the files' stamps too: a notebook that edits its judgments gets the new ones."""
    judgments, features = letor
    kwargs = {"judgments": str(judgments), "features": str(features), "num_candidates": 3, "split": "all"}
    before = gym.make(ENV_ID, **kwargs).unwrapped.core.data
    assert before.num_queries == 30
    rows = [{"query": f"new{q}", "document": f"d{d}", "relevance": d % 3} for q in range(4) for d in range(5)]
    write_table(judgments, rows)
    after = gym.make(ENV_ID, **kwargs).unwrapped.core.data  # was the old 30 queries, keyed by the paths alone
    assert after.num_queries == 4
