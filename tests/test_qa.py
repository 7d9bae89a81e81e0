"""QA-v0 / QABandit-v0 / QAEasy-v0: the pairs, the features, the inspect-or-answer MDP, user files, policies."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nlp_agents
import nlp_envs
from nlp_envs.core import hash_keys, hashes_to_uniform
from nlp_envs.data import qa_pairs
from nlp_envs.data.corpus import CorpusCacheWarning
from nlp_envs.data.files import DataFileError
from nlp_envs.data.qa_pairs import FEATURES, QAPairs, QASplit, _Sparse, _sparse_dots, load_pairs
from nlp_envs.data.text import tokenize
from nlp_envs.policies import reference_policy
from nlp_envs.qa import _FEATURE_TEXTS, _TOP_BITS, INSPECT, RIGHT, QACore, QADraws, _feature_codes
from tests.conftest import make_vec
from tests.test_autoreset import assert_infos_agree, ended

IDS = ("nlp_envs/QA-v0", "nlp_envs/QABandit-v0", "nlp_envs/QAEasy-v0")
N = 10


def core_of(env) -> QACore:
    return env.unwrapped.core


@pytest.fixture(scope="module")
def faq_rows() -> list[dict[str, str]]:
    """Eighty real question/answer pairs (the chatterbot training split), as a user FAQ would hold them."""
    data = load_pairs("chatterbot").train
    return [{"question": q, "answer": a} for q, a in zip(data.questions[:80], data.answers[:80], strict=True)]


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, str] = ("question", "answer")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows([[row["question"], row["answer"]] for row in rows])
    return path


# --- the pairs ---------------------------------------------------------------------------------


def test_chatterbot_pairs_are_deduplicated_and_test_questions_are_unseen() -> None:
    pairs = load_pairs("chatterbot")
    train_keys = [" ".join(tokenize(question)) for question in pairs.train.questions]
    test_keys = [" ".join(tokenize(question)) for question in pairs.test.questions]
    assert len(set(train_keys)) == len(train_keys) and len(set(test_keys)) == len(test_keys)
    assert set(train_keys).isdisjoint(test_keys)
    assert len(pairs.train.questions) > 500 and len(pairs.test.questions) > 100


def test_groups_are_contiguous_and_answer_ids_follow_the_words() -> None:
    split = load_pairs("chatterbot").test
    for pair in range(len(split.questions)):
        start, size = split.group_starts[pair], split.group_sizes[pair]
        assert start <= pair < start + size
        assert (split.groups[start : start + size] == split.groups[pair]).all()
    keys = [" ".join(tokenize(answer)) for answer in split.answers]
    for first in range(0, len(keys), 7):
        for second in range(len(keys)):
            assert (keys[first] == keys[second]) == (split.answer_ids[first] == split.answer_ids[second])


def test_sparse_dots_equal_dense_dot_products(rng: np.random.Generator) -> None:
    dense = rng.random((6, 9)) * (rng.random((6, 9)) < 0.4)

    def sparse(matrix: np.ndarray) -> _Sparse:
        rows, ids = np.nonzero(matrix)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(matrix)))])
        return _Sparse(indptr.astype(np.int64), ids.astype(np.int64), matrix[rows, ids])

    left, right = rng.integers(6, size=20), rng.integers(6, size=20)
    expected = np.einsum("ij,ij->i", dense[left], dense[right])
    shared, dots = _sparse_dots(sparse(dense), sparse(dense), left, right)
    np.testing.assert_allclose(dots, expected)
    np.testing.assert_array_equal(shared, ((dense[left] > 0) & (dense[right] > 0)).sum(axis=1))


def test_features_are_word_overlap_tfidf_and_ppmi_cosines() -> None:
    split = load_pairs("chatterbot").test
    questions = np.arange(len(split.questions))
    answers = np.roll(questions, 5)
    features = split.features(questions, answers)
    assert features.shape == (len(questions), len(FEATURES)) and features.dtype == np.float32
    for question, answer, row in zip(questions[:40], answers[:40], features[:40], strict=True):
        words_q, words_a = set(tokenize(split.questions[question])), set(tokenize(split.answers[answer]))
        assert row[0] == pytest.approx(len(words_q & words_a) / len(words_q | words_a), abs=1e-6)
        assert (row[1] > 0) == bool(words_q & words_a)
    assert (features[:, 1] >= 0).all() and (features[:, 1] <= 1 + 1e-6).all()
    # A question's own words: TF-IDF cosine 1.
    own = load_pairs("chatterbot").test
    same = own._question_tfidf.gather(np.array([0]))[2]
    assert np.linalg.norm(same) == pytest.approx(1.0)
    # The true answers match their questions better than random answers, on average.
    true = split.features(questions, questions).mean(axis=0)
    assert (true > features.mean(axis=0)).all()


def test_the_features_table_holds_exactly_what_features_computes(rng: np.random.Generator) -> None:
    """Small splits answer features() from a table; its numbers are bit for bit the computed ones."""
    for split in (load_pairs("chatterbot").train, load_pairs("chatterbot").test):
        count = len(split.questions)
        assert split.table is not None and split.table.shape == (count, count, len(FEATURES))
        assert not split.table.flags.writeable
        questions, answers = rng.integers(count, size=500), rng.integers(count, size=500)
        computed = dataclasses.replace(split, table=None).features(questions, answers)
        np.testing.assert_array_equal(split.features(questions, answers), computed)
        # Broadcast (episodes, 1) questions with (episodes, candidates) answers, many (one take of
        # flattened rows) and few (indexing), in int64 and in uint64.
        for episodes in (50, 3):
            for dtype in (np.int64, np.uint64):
                some = questions[:episodes, None].astype(dtype), answers[: episodes * 10].reshape(-1, 10).astype(dtype)
                computed = dataclasses.replace(split, table=None).features(*some)
                assert computed.shape == (episodes, 10, len(FEATURES))
                np.testing.assert_array_equal(split.features(*some), computed)


def same_pairs(first: QAPairs, second: QAPairs) -> None:
    """Every field of both splits equal (arrays bit for bit)."""
    for name in ("train", "test"):
        for field in dataclasses.fields(QASplit):
            left, right = getattr(first.split(name), field.name), getattr(second.split(name), field.name)
            if isinstance(left, _Sparse):
                for part in ("indptr", "ids", "weights"):
                    np.testing.assert_array_equal(getattr(left, part), getattr(right, part), err_msg=field.name)
            elif isinstance(left, np.ndarray) or left is None:
                np.testing.assert_array_equal(left, right, err_msg=field.name)
            else:
                assert left == right, field.name


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """An empty pairs cache, and no pairs cached in this process."""
    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    load_pairs.cache_clear()
    yield tmp_path / "cache"
    load_pairs.cache_clear()


def test_pairs_are_cached_on_disk_and_an_edited_file_is_built_again(
    faq_rows, cache: Path, tmp_path, monkeypatch
) -> None:
    faq = write_csv(tmp_path / "faq.csv", faq_rows)
    built = load_pairs(str(faq))
    (stored,) = cache.glob("qa-file-*.npz")
    load_pairs.cache_clear()
    with monkeypatch.context() as patch:  # a second process reads the file, building nothing
        patch.setattr(qa_pairs, "_build_pairs", lambda *args: pytest.fail("built again despite the cache"))
        same_pairs(load_pairs(str(faq)), built)
        load_pairs.cache_clear()
        # Other column names are another cache entry, not this one.
        with pytest.raises(pytest.fail.Exception, match="built again"):
            load_pairs(str(faq), "question", "Answer")
    load_pairs.cache_clear()
    write_csv(faq, [*faq_rows, {"question": "Is this question new?", "answer": "Brand new."}])
    edited = load_pairs(str(faq))
    assert "Is this question new?" in edited.train.questions + edited.test.questions
    assert len(list(cache.glob("qa-file-*.npz"))) == 2 and stored.exists()


def test_the_cache_of_a_named_dataset_follows_its_package_version(monkeypatch) -> None:
    key = qa_pairs._cache_key("chatterbot", "question", "answer")
    assert key is not None and key.startswith("chatterbot-")
    monkeypatch.setattr(qa_pairs.importlib.metadata, "version", lambda package: "9.9.9")
    assert qa_pairs._cache_key("chatterbot", "question", "answer") != key


@pytest.mark.parametrize("damage", ["truncated", "foreign", "bad texts", "bad table"])
def test_a_damaged_pairs_cache_is_named_and_rebuilt(damage: str, faq_rows, cache: Path, tmp_path) -> None:
    faq = write_csv(tmp_path / "faq.csv", faq_rows)
    built = load_pairs(str(faq))
    (stored,) = cache.glob("qa-file-*.npz")
    arrays = dict(np.load(stored))
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[:5000])
    elif damage == "foreign":
        np.savez(stored, something=np.arange(3))
    elif damage == "bad texts":
        np.savez(stored, **{**arrays, "train_texts": np.frombuffer(b'[["only one list"]]', dtype=np.uint8)})
    else:
        np.savez(stored, **{**arrays, "test_table": arrays["test_table"][:-1]})
    load_pairs.cache_clear()
    with pytest.warns(CorpusCacheWarning, match=f"QA pairs cache file '{stored}' is unusable"):
        rebuilt = load_pairs(str(faq))
    same_pairs(rebuilt, built)
    load_pairs.cache_clear()
    same_pairs(load_pairs(str(faq)), built)  # the rebuilt file is whole again


def test_a_split_too_large_for_a_table_computes_its_features(faq_rows, cache: Path, tmp_path, monkeypatch) -> None:
    """Above TABLE_LIMIT combinations (chitchat) there is no table, and the episodes are the same."""
    kwargs = {"pairs": str(write_csv(tmp_path / "faq.csv", faq_rows)), "candidates": 4}
    with_table = make_vec("nlp_envs/QA-v0", 8, **kwargs)
    monkeypatch.setattr(qa_pairs, "TABLE_LIMIT", 100)
    load_pairs.cache_clear()
    without = make_vec("nlp_envs/QA-v0", 8, **kwargs)
    assert core_of(with_table).data.table is not None and core_of(without).data.table is None
    first, second = with_table.reset(seed=4)[0], without.reset(seed=4)[0]
    np.testing.assert_array_equal(first, second)
    actions = np.arange(8) % 8
    np.testing.assert_array_equal(with_table.step(actions)[0], without.step(actions)[0])


# --- the episodes ------------------------------------------------------------------------------


def test_candidates_hold_the_true_answer_once_and_distinct_answers() -> None:
    env = make_vec("nlp_envs/QA-v0", 64, split="test")
    env.reset(seed=0)
    core = core_of(env)
    data = core.data
    answers = data.answer_ids[core.state.candidates]
    assert all(len(set(row)) == N for row in answers.tolist())
    np.testing.assert_array_equal(core.state.candidates[np.arange(64), core.state.target], core.state.question)
    # Hard distractors: candidates from the question's own topic file, beyond chance.
    same_group = (data.groups[core.state.candidates] == data.groups[core.state.question][:, None]).sum(axis=1) - 1
    assert same_group.mean() >= 3.0
    # The true answer's position is spread over the candidates.
    assert len(set(core.state.target.tolist())) >= 6


def test_inspect_reveals_one_candidate_at_a_cost_and_answer_ends_the_episode() -> None:
    env = gym.make("nlp_envs/QA-v0")
    observation, info = env.reset(seed=3)
    core = core_of(env)
    assert not observation[: 3 * N].any() and not observation[3 * N : 4 * N].any()
    assert observation[4 * N : 5 * N].min() > 0  # answer lengths are seen from the start
    observation, reward, terminated, truncated, info = env.step(4)
    assert reward == pytest.approx(-0.01) and not terminated and not truncated
    np.testing.assert_array_equal(observation[12:15], core.state.features[0, 4])
    assert observation[3 * N + 4] == 1.0 and observation[3 * N : 4 * N].sum() == 1.0
    assert not observation[:12].any() and not observation[15 : 3 * N].any()
    assert observation[5 * N] == pytest.approx(1 / (N + 1))
    assert info["action_mask"].tolist() == [i != 4 for i in range(N)] + [True] * N
    target = int(core.state.target[0])
    _, reward, terminated, _, info = env.step(N + target)
    assert (reward, terminated, info["correct"], info["inspections"], info["answer"]) == (1.0, True, 1.0, 1, target)
    env.reset(seed=3)
    _, reward, terminated, _, info = env.step(N + (target + 1) % N)
    assert (reward, terminated, info["correct"], info["answer"]) == (0.0, True, 0.0, (target + 1) % N)


def test_inspecting_again_ends_the_episode_without_an_answer() -> None:
    env = gym.make("nlp_envs/QA-v0", render_mode="ansi")
    env.reset(seed=1)
    env.step(2)
    _, reward, terminated, truncated, info = env.step(2)
    assert (reward, terminated, truncated, info["correct"], info["answer"], info["inspections"]) == (
        pytest.approx(-0.01),
        True,
        False,
        0.0,
        -1,
        2,
    )
    assert "inspected [2] again, no answer" in env.render()


def test_every_episode_ends_by_candidates_plus_one_steps_without_truncation(rng: np.random.Generator) -> None:
    env = make_vec("nlp_envs/QA-v0", 32, candidates=4, hard_distractors=1)
    env.reset(seed=0)
    steps = np.zeros(32, np.int64)
    for _ in range(200):
        masks = env.unwrapped.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in masks])
        _, _, terminated, truncated, _ = env.step(actions)
        assert not truncated.any()
        steps += 1
        steps[terminated] = -1  # the next step restarts the slot (NEXT_STEP)
        assert steps.max() <= 5


def test_bandit_shows_every_feature_at_once_and_answers_in_one_step() -> None:
    env = gym.make("nlp_envs/QABandit-v0")
    observation, _ = env.reset(seed=0)
    core = core_of(env)
    assert env.action_space == gym.spaces.Discrete(N)
    np.testing.assert_array_equal(observation[: 3 * N], core.state.features[0].ravel())
    assert observation[3 * N : 4 * N].all()
    _, reward, terminated, truncated, info = env.step(int(core.state.target[0]))
    assert (reward, terminated, truncated, info["correct"], info["inspections"]) == (1.0, True, False, 1.0, 0)


def test_answer_hint_marks_the_true_answer_under_seeded_noise_and_changes_nothing_else() -> None:
    """QAEasy-v0's fourth feature: 1 on the true answer, 0 elsewhere, plus noise of sd 0.25, clipped to +-1."""
    easy = make_vec("nlp_envs/QAEasy-v0", 512, split="test")
    plain = make_vec("nlp_envs/QAEasy-v0", 512, split="test", answer_hint=None)
    observations, _ = easy.reset(seed=3)
    plain_observations, _ = plain.reset(seed=3)
    core, plain_core = core_of(easy), core_of(plain)
    assert core.feature_names == (*FEATURES, "hint") and observations.shape == (512, 6 * 4 + 1)
    features = observations[:, :16].reshape(512, 4, 4)
    np.testing.assert_array_equal(features[:, :, :3], plain_observations[:, :12].reshape(512, 4, 3))
    np.testing.assert_array_equal(core.state.target, plain_core.state.target)
    hint = features[:, :, 3]
    true = np.arange(4) == core.state.target[:, None]
    assert np.abs(hint).max() <= 1.0 and (hint.argmax(axis=1) == core.state.target).mean() >= 0.98
    assert 0.85 < hint[true].mean() < 0.95 and abs(hint[~true].mean()) < 0.03
    assert 0.2 < hint[~true].std() < 0.3  # the noise's standard deviation, 0.25 (clipping barely touches it)
    again, _ = make_vec("nlp_envs/QAEasy-v0", 512, split="test").reset(seed=3)
    np.testing.assert_array_equal(again, observations)
    # The tfidf rule reads the TF-IDF column of the wider layout, not the hint.
    tfidf = reference_policy("nlp_envs/QAEasy-v0", "tfidf")(observations, easy)
    np.testing.assert_array_equal(tfidf, features[:, :, 1].argmax(axis=1))


def test_answer_hint_is_shown_only_once_inspected_in_the_mdp() -> None:
    env = gym.make("nlp_envs/QA-v0", answer_hint=0.1, render_mode="ansi")
    observation, _ = env.reset(seed=1)
    core = core_of(env)
    assert observation.shape == (6 * N + 1,) and not observation[: 4 * N].any()
    target = int(core.state.target[0])
    observation, reward, _, _, _ = env.step(target)
    assert reward == -0.01 and observation[4 * target + 3] == core.state.features[0, target, 3] > 0.5
    assert f"hint {core.state.features[0, target, 3]:.2f})" in env.render()


def test_text_in_info_and_render_has_the_question_and_the_chosen_answer() -> None:
    env = gym.make("nlp_envs/QA-v0", render_mode="ansi", split="test")
    _, info = env.reset(seed=5)
    core = core_of(env)
    question = core.data.questions[core.state.question[0]]
    assert info["text"].startswith(f"Q: {question}\n") and info["text"] == env.render()
    assert info["text"].count("\n  [") == N
    chosen = core.data.answers[core.state.candidates[0, 7]]
    _, _, _, _, info = env.step(N + 7)
    assert f"-> answered [7] {chosen!r}; true answer" in info["text"] and info["text"] == env.render()


def rebuilt_text(core: QACore, slot: int) -> str:
    """``core.text(slot)`` made afresh, without what earlier calls kept."""
    core._text_parts.pop(slot, None)
    core._text_now.pop(slot, None)
    return core.text(slot)


def text_from_features(core: QACore, slot: int) -> str:
    """``core.text(slot)`` made afresh as a batch core makes it: from the features, not from texts drawn ahead."""
    drawn, core._texts = core._texts, None
    try:
        return rebuilt_text(core, slot)
    finally:
        core._texts = drawn


@pytest.mark.parametrize("env_id", IDS)
def test_the_text_kept_between_steps_equals_the_text_made_afresh(env_id: str, rng: np.random.Generator) -> None:
    """text() keeps an episode's lines and formats a candidate once; each text is the one made from scratch."""
    env = gym.make(env_id, render_mode="ansi")
    core = core_of(env)
    _, info = env.reset(seed=2)
    episodes = 0
    for _ in range(300):
        _, _, terminated, truncated, step_info = env.step(int(rng.integers(env.action_space.n)))
        assert step_info["text"] == env.render() == rebuilt_text(core, 0)
        assert core._texts is not None and step_info["text"] == text_from_features(core, 0)
        if terminated or truncated:
            if episodes % 3 == 0:  # a step after the end acts on the finished episode's arrays
                _, _, _, _, step_info = env.step(int(rng.integers(env.action_space.n)))
                assert step_info["text"] == rebuilt_text(core, 0)
            episodes += 1
            _, info = env.reset()
            assert info["text"] == rebuilt_text(core, 0)  # a new episode never shows the last one's lines
    assert episodes >= 50
    vector = make_vec(env_id, 5, info_text=True, autoreset_mode=AutoresetMode.SAME_STEP)
    vector.reset(seed=4)
    for _ in range(60):
        _, _, terminated, truncated, infos = vector.step(rng.integers(vector.single_action_space.n, size=5))
        for slot in range(5):
            assert core_of(vector).text(slot) == rebuilt_text(core_of(vector), slot)
        for slot in np.flatnonzero(terminated | truncated):
            assert infos["text"][slot] == rebuilt_text(core_of(vector), slot)


@pytest.mark.parametrize("kwargs", [{}, {"bandit": True}, {"candidates": 4, "answer_hint": 0.25}])
def test_the_observation_kept_in_place_equals_the_state_it_shows(kwargs: dict, rng: np.random.Generator) -> None:
    """begin() and advance() write only what changed; the whole observation is what the state says."""
    env = make_vec("nlp_envs/QA-v0", 6, **kwargs)
    core = core_of(env)
    observations, _ = env.reset(seed=8)
    n = core.candidates
    for _ in range(80):
        state = core.state
        shown = state.features * state.inspected[:, :, None]  # zeros signed as the features until inspected
        expected = np.concatenate(
            [shown.reshape(6, -1), state.inspected, core._lengths[state.candidates], state.steps[:, None] / (n + 1)],
            axis=1,
            dtype=np.float32,
        )
        assert observations.tobytes() == expected.tobytes()
        observations, *_ = env.step(rng.integers(env.single_action_space.n, size=6))


@pytest.mark.parametrize("kwargs", [{}, {"bandit": True}, {"candidates": 4, "answer_hint": 0.25, "inspect_cost": 0.5}])
def test_the_per_act_tables_step_as_the_rules_say(kwargs: dict, rng: np.random.Generator) -> None:
    """advance() reads outcomes, masks and counters from per-episode tables; each step is what the rules say."""
    env = make_vec("nlp_envs/QA-v0", 6, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    core = core_of(env)
    env.reset(seed=3)
    n, offset, cost = core.candidates, core.answer_offset, core.inspect_cost
    rows = np.arange(6)
    for _ in range(150):
        state = core.state
        masks = env.action_masks()
        if core.bandit:
            assert masks.all()
        else:  # an inspected candidate's inspection is masked, answers never are
            np.testing.assert_array_equal(masks, np.concatenate([~state.inspected, np.ones((6, n), bool)], axis=1))
        actions = rng.integers(env.single_action_space.n, size=6)
        position, answering = actions % n, actions >= offset
        was_inspected = state.inspected[rows, position].copy()
        expected = np.where(answering, position == state.target, INSPECT + was_inspected)
        steps, inspections = state.steps.copy(), state.inspections.copy()
        _, rewards, terminated, _, infos = env.step(actions)
        np.testing.assert_array_equal(rewards, np.array([0.0, 1.0, -cost, -cost])[expected])
        np.testing.assert_array_equal(terminated, expected != INSPECT)
        going = ~terminated  # the ended slots restarted: their last step is in final_info
        np.testing.assert_array_equal(state.outcome[going], expected[going])
        np.testing.assert_array_equal(state.position[going], position[going])
        np.testing.assert_array_equal(state.answer[going], np.where(answering, position, -1)[going])
        np.testing.assert_array_equal(state.steps[going], steps[going] + 1)
        np.testing.assert_array_equal(state.inspections[going], inspections[going] + ~answering[going])
        assert state.inspected[rows, position][going].all()
        ending = terminated.nonzero()[0]
        final_info = infos.get("final_info", {})
        if ending.size:
            np.testing.assert_array_equal(final_info["correct"][ending], expected[ending] == RIGHT)
            np.testing.assert_array_equal(final_info["inspections"][ending], inspections[ending] + ~answering[ending])
            np.testing.assert_array_equal(final_info["answer"][ending], np.where(answering, position, -1)[ending])
            # A restarted slot starts afresh: nothing inspected (all in the bandit), no step yet.
            assert (state.inspected[ending] == core.bandit).all() and (state.steps[ending] == 0).all()
    # The single env's steps past the end act on the finished episode's tables by the same rules.
    single = gym.make("nlp_envs/QA-v0", **kwargs)
    core = core_of(single)
    single.reset(seed=5)
    for action in rng.integers(single.action_space.n, size=300).tolist():
        position, answering = action % n, action >= offset
        inspected = bool(core.state.inspected[0, position])
        expected = int(position == core.state.target[0]) if answering else INSPECT + inspected
        _, reward, terminated, _, _ = single.step(action)
        assert reward == [0.0, 1.0, -cost, -cost][expected] and terminated == (expected != INSPECT)
        if rng.random() < 0.2:
            single.reset()


def test_the_hard_window_read_from_the_groups_listed_twice_is_the_window_of_the_group() -> None:
    """Every question's window at every offset: the pairs after it in its group, wrapping, never itself."""
    core = QACore(1, candidates=10)
    data = core.data
    for question in range(len(data.questions)):
        start, size = int(data.group_starts[question]), int(data.group_sizes[question])
        others, after, hard = core._groups[question].tolist()
        place = question - start
        offsets = np.arange(others)[:, None]
        window = core._group_pairs[after + (offsets + np.arange(hard)) % others]
        expected = start + (place + 1 + (offsets + np.arange(hard)) % others) % size
        np.testing.assert_array_equal(window, expected)
        assert hard == min(core.hard_distractors, size - 1) and (window != question).all()


def test_the_hint_is_box_muller_of_the_uniforms_of_hashes_to_uniform(rng: np.random.Generator) -> None:
    """_hints folds the uniforms' scale into its products; bit for bit the Box-Muller of hashes_to_uniform's."""
    core = QACore(1, candidates=4, answer_hint=0.25)
    hashes = rng.integers(0, 2**64, size=(2000, 8), dtype=np.uint64, endpoint=False)
    hashes[0] = [0, 1, 2**11, 2**63, 2**64 - 1, 2**64 - 2**11, 2**53, 12345]  # extremes of both uniforms
    right = np.arange(4) == rng.integers(4, size=(2000, 1))
    uniform = hashes_to_uniform(hashes)
    noise = np.sqrt(-2.0 * np.log1p(-uniform[:, :4])) * np.cos(2.0 * np.pi * uniform[:, 4:])
    expected = np.clip(right + 0.25 * noise, -1.0, 1.0)
    assert core._hints(hashes >> _TOP_BITS, right).tobytes() == expected.tobytes()


def test_the_features_texts_by_code_read_as_format_shows_them(rng: np.random.Generator) -> None:
    """text() shows a feature as the text of its code; each reads as "{:.2f}" gives the float32 value."""
    boundaries = (np.arange(-200, 201) / 200).astype(np.float32)  # every x.xx5 (rounding ties: 0.125, ...)
    near, above, below = [boundaries], boundaries, boundaries
    for _ in range(3):  # and the three float32 values just above and below each
        above, below = np.nextafter(above, np.float32(2)), np.nextafter(below, np.float32(-2))
        near += [above, below]
    values = np.concatenate([rng.uniform(-1, 1, 20000).astype(np.float32), *near, np.float32([-0.0, 0.0, -1e-9])])
    values = values[np.abs(values) <= 1]
    texts = _FEATURE_TEXTS.take(_feature_codes(values)).tolist()
    assert texts == [f"{value:.2f}" for value in values.tolist()]
    assert texts[-3:] == ["-0.00", "0.00", "-0.00"]


@pytest.mark.parametrize("env_id", IDS)
def test_both_checkers_pass(env_id: str) -> None:
    gym_check_env(gym.make(env_id).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id), warn=False)


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda mode: mode.value)
def test_native_equals_sync_on_a_user_file(mode: AutoresetMode, faq_rows, tmp_path: Path) -> None:
    kwargs = {"pairs": str(write_csv(tmp_path / "faq.csv", faq_rows)), "candidates": 4}
    native = make_vec("nlp_envs/QA-v0", 3, autoreset_mode=mode, info_text=True, **kwargs)
    sync = gym.make_vec(
        "nlp_envs/QA-v0", num_envs=3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs
    )
    np.testing.assert_array_equal(native.reset(seed=2)[0], sync.reset(seed=2)[0])
    rng = np.random.default_rng(0)
    for step in range(20):
        actions = rng.integers(8, size=3)
        native_step, sync_step = native.step(actions), sync.step(actions)
        for native_part, sync_part in zip(native_step[:4], sync_step[:4], strict=True):
            np.testing.assert_allclose(native_part, sync_part, err_msg=f"step {step}")
        assert_infos_agree(native_step[4], sync_step[4], f"step {step}", set())
        done = ended(native_step[2], native_step[3])
        if mode is AutoresetMode.DISABLED and done.any():
            np.testing.assert_array_equal(
                native.reset(options={"reset_mask": done.copy()})[0], sync.reset(options={"reset_mask": done.copy()})[0]
            )


def test_seeded_episodes_reproduce_and_seeds_differ() -> None:
    first, second = make_vec("nlp_envs/QA-v0", 8), make_vec("nlp_envs/QA-v0", 8)
    first.reset(seed=11)
    second.reset(seed=11)
    np.testing.assert_array_equal(core_of(first).state.candidates, core_of(second).state.candidates)
    np.testing.assert_array_equal(core_of(first).state.target, core_of(second).state.target)
    second.reset(seed=12)
    assert not np.array_equal(core_of(first).state.candidates, core_of(second).state.candidates)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"candidates": 1}, "candidates"),
        ({"candidates": 2.5}, "candidates"),
        ({"hard_distractors": 10}, "hard_distractors"),
        ({"hard_distractors": -1}, "hard_distractors"),
        ({"inspect_cost": -0.1}, "inspect_cost"),
        ({"inspect_cost": float("nan")}, "inspect_cost"),
        ({"bandit": 1}, "bandit"),
        ({"split": "dev"}, "split"),
        ({"pairs": "ubuntu"}, "pairs"),
        ({"question_column": ""}, "question_column"),
        ({"answer_hint": -0.5}, "answer_hint"),
        ({"answer_hint": True}, "answer_hint"),
        ({"answer_hint": float("inf")}, "answer_hint"),
        ({"answer_hint": "0.1"}, "answer_hint"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        gym.make("nlp_envs/QA-v0", **kwargs)


@pytest.mark.parametrize("bad", [20, -1, 2.0, True, np.array([1, 2])])
def test_bad_actions_are_refused(bad) -> None:
    env = gym.make("nlp_envs/QA-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)
    env.step(0)  # still usable


# --- user files ---------------------------------------------------------------------------------


def test_user_csv_and_jsonl_make_the_same_env(faq_rows, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "faq.csv", faq_rows)
    jsonl_path = tmp_path / "faq.jsonl"
    jsonl_path.write_text("\n".join(json.dumps(row) for row in faq_rows), encoding="utf-8")
    observations = []
    for path in (csv_path, jsonl_path):
        env = gym.make("nlp_envs/QA-v0", pairs=str(path), candidates=5)
        observations.append(env.reset(seed=4)[0])
        data = core_of(env).data
        assert len(set(data.groups.tolist())) == len(data.questions)  # each pair its own group: all random
        gym_check_env(env.unwrapped, skip_render_check=True)
    np.testing.assert_array_equal(*observations)


def test_user_file_columns_can_be_renamed(faq_rows, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "faq.csv", faq_rows, columns=("q", "a"))
    env = gym.make("nlp_envs/QA-v0", pairs=str(path), question_column="q", answer_column="a", candidates=4)
    assert env.reset(seed=0)[0].shape == (21,)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("question,reply\nhi,hello\n", r"faq.csv': row 1 has no column 'answer'"),
        ("question,answer\nhi,hello\nhow are you,!!!\n", r"faq.csv': row 2 has no word in its 'answer'"),
        ("question,answer\nhi,hello,there\n", r"faq.csv': line 2 has a different number of fields"),
        ("question,answer\n", r"faq.csv' has no rows"),
        ("question,answer\nhi,hello\nhey,hello\n", r"faq.csv' gives \d+ distinct (train|test) question"),
    ],
)
def test_malformed_user_files_are_refused_naming_file_and_row(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFileError, match=message):
        gym.make("nlp_envs/QA-v0", pairs=str(path))


def test_a_file_with_too_few_distinct_answers_is_refused(faq_rows, tmp_path: Path) -> None:
    rows = [{"question": row["question"], "answer": f"answer {i % 3}"} for i, row in enumerate(faq_rows)]
    with pytest.raises(DataFileError, match=r"distinct answers .* fewer than candidates=10"):
        gym.make("nlp_envs/QA-v0", pairs=str(write_csv(tmp_path / "few.csv", rows)))


def test_missing_user_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        gym.make("nlp_envs/QA-v0", pairs=str(tmp_path / "nope.jsonl"))


# --- reference policies -------------------------------------------------------------------------


def test_oracle_is_optimal_r_at_1_is_one_at_zero_inspections() -> None:
    for env_id in IDS:
        result = nlp_envs.evaluate(
            env_id, reference_policy(env_id, "oracle"), episodes=200, env_kwargs={"split": "test"}
        )
        assert result.mean_return == 1.0  # the largest return there is: reward 1 at the first step, no cost
        assert result.metrics["correct"] == 1.0 and result.metrics["inspections"] == 0.0


def test_tfidf_inspects_everything_then_answers_the_best_cosine() -> None:
    env = make_vec("nlp_envs/QA-v0", 16, split="test")
    observations, _ = env.reset(seed=0)
    policy = reference_policy("nlp_envs/QA-v0", "tfidf")
    core = core_of(env)
    expected = core.state.features[:, :, 1].argmax(axis=1) + N
    for _ in range(N):
        observations, *_ = env.step(policy(observations, env))
    np.testing.assert_array_equal(policy(observations, env), expected)
    result = nlp_envs.evaluate("nlp_envs/QA-v0", policy, episodes=300, env_kwargs={"split": "test"})
    assert result.metrics["inspections"] == N
    assert result.mean_return == pytest.approx(result.metrics["correct"] - 0.01 * N)
    assert result.metrics["correct"] > 0.2  # well above random's 0.1


def test_random_never_inspects_twice() -> None:
    result = nlp_envs.evaluate("nlp_envs/QA-v0", reference_policy("nlp_envs/QA-v0", "random"), episodes=300)
    assert 0.0 <= result.metrics["correct"] < 0.2
    assert result.random_return == pytest.approx(result.mean_return)


def test_dqn_reaches_0_9_on_the_easy_preset() -> None:
    """DQN on QAEasy-v0 (4 candidates, bandit features with the answer hint), trained on the training
    questions, scored on unseen test questions: at least 0.9 normalised, far above the tfidf rule."""
    import torch

    torch.set_num_threads(1)
    env = make_vec("nlp_envs/QAEasy-v0", 16, split="train")
    agent = nlp_agents.make("dqn", env, seed=0, device="cpu").learn(5_000)
    result = nlp_envs.evaluate("nlp_envs/QAEasy-v0", agent, episodes=500, seed=0, env_kwargs={"split": "test"})
    tfidf = nlp_envs.evaluate(
        "nlp_envs/QAEasy-v0",
        reference_policy("nlp_envs/QAEasy-v0", "tfidf"),
        episodes=500,
        seed=0,
        env_kwargs={"split": "test"},
    )
    assert result.normalized_score >= 0.9, result.normalized_score
    assert result.mean_return > tfidf.mean_return + 0.3


@pytest.mark.slow
def test_chitchat_test_questions_are_unseen_and_hard_distractors_share_the_conversation() -> None:
    """Chitchat message/reply pairs (a first build of 10 to 20 s)."""
    pairs = load_pairs("chitchat")
    assert len(pairs.train.questions) > 50_000 and len(pairs.test.questions) > 5_000
    train_keys = {" ".join(tokenize(question)) for question in pairs.train.questions}
    assert not any(" ".join(tokenize(question)) in train_keys for question in pairs.test.questions)
    env = make_vec("nlp_envs/QA-v0", 64, pairs="chitchat", split="test")
    env.reset(seed=0)
    core = core_of(env)
    same = (core.data.groups[core.state.candidates] == core.data.groups[core.state.question][:, None]).sum(axis=1)
    assert (same - 1).mean() >= 3.5  # 4 hard distractors from the question's own conversation, nearly always


def test_a_suite_hashes_the_pairs_file_and_keeps_builtin_names(faq_rows, tmp_path: Path) -> None:
    """An edited FAQ file is a new leaderboard cell; a built-in pairs name is no file."""
    from nlp_envs.leaderboard.suites import load_suite

    faq = write_csv(tmp_path / "faq.csv", faq_rows)
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "mine"\nseeds = 1\nsteps = 10\n\n[[envs]]\nid = "nlp_envs/QA-v0"\n'
        f'kwargs = {{ pairs = "{faq.name}", candidates = 4 }}\n\n'
        '[[envs]]\nid = "nlp_envs/QAEasy-v0"\nkwargs = { pairs = "chatterbot" }\n\n[agents.random]\n',
        encoding="utf-8",
    )
    before, builtin = load_suite(str(suite)).cells()
    assert set(before.config["data_hashes"]) == {"pairs"} and before.env.kwargs["pairs"] == str(faq.resolve())
    assert builtin.env.kwargs["pairs"] == "chatterbot" and not builtin.config.get("data_hashes")
    faq.write_text(faq.read_text(encoding="utf-8") + "What is new?,Nothing much.\n", encoding="utf-8")
    after, _ = load_suite(str(suite)).cells()
    assert after.key != before.key


def test_a_pairs_file_edited_within_one_process_is_read_again(faq_rows, cache: Path, tmp_path) -> None:
    """The process cache is keyed by the file's stamp too: a notebook that edits its FAQ gets the new pairs."""
    faq = write_csv(tmp_path / "faq.csv", faq_rows)
    before = load_pairs(str(faq))
    assert load_pairs(str(faq)) is before  # unchanged: served from the process cache
    write_csv(faq, [*faq_rows, {"question": "Is this question new?", "answer": "Brand new."}])
    after = load_pairs(str(faq))  # no cache_clear(): was the old pairs, keyed by the path alone
    assert "Is this question new?" in after.train.questions + after.test.questions


@pytest.mark.parametrize(
    "kwargs", [{}, {"bandit": True, "candidates": 4, "answer_hint": 0.25}, {"candidates": 30, "hard_distractors": 20}]
)
def test_draw_begins_draws_each_episode_from_its_key_alone(kwargs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row i of a batch of draws is the draw of keys[i] alone, and a slot begun from it is begin() with that key."""
    redrawn: list[int] = []  # the rows with a repeated answer, per call of _redraw_repeats
    redraw = QACore._redraw_repeats

    def counted_redraw(self: QACore, rows: np.ndarray, *args: np.ndarray) -> None:
        redrawn.append(len(rows))
        redraw(self, rows, *args)

    monkeypatch.setattr(QACore, "_redraw_repeats", counted_redraw)
    core, alone = QACore(3, **kwargs), QACore(3, **kwargs)
    keys = hash_keys(np.arange(64, dtype=np.uint64), 9)
    drawn = core.draw_begins(keys)
    assert kwargs.get("candidates") != 30 or sum(redrawn) > 1  # the batch has several episodes with a repeat
    for field in drawn:
        field.flags.writeable = False  # as the single env hands them: begin_drawn() only reads them
    for row in range(len(keys)):
        for name, field, own in zip(QADraws._fields, drawn, alone.draw_begins(keys[row : row + 1]), strict=True):
            np.testing.assert_array_equal(field[row], own[0], err_msg=f"{name} of row {row}")
    core.begin_drawn(np.array([1]), QADraws(*(field[17:18] for field in drawn)))
    alone.begin(np.array([1]), keys[17:18])
    for _ in range(3):  # the slot's state is its own (no view of the draws), as begin() makes it
        np.testing.assert_array_equal(core.observe()[1], alone.observe()[1])
        np.testing.assert_array_equal(core._ints[1], alone._ints[1])
        actions = np.array([0, 1, 0])
        np.testing.assert_array_equal(core.advance(actions)[0], alone.advance(actions)[0])
