"""NextWord: the bigram model, the DP oracle against brute force, rewards, data and properties."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import nlp_envs
from nlp_envs.data import CHITCHAT, MissingDataError
from nlp_envs.data.corpus import load_corpus
from nlp_envs.data.files import DataFileError
from nlp_envs.language_model import bigram_model
from nlp_envs.next_word import NextWordCore


def make_core(**kwargs) -> NextWordCore:
    core = NextWordCore(1, **kwargs)
    core.begin(np.zeros(1, dtype=np.int64), np.array([7], dtype=np.uint64))
    return core


def test_bigram_rows_are_distributions_over_words_and_unknown_types() -> None:
    model = bigram_model("chitchat", 50)
    probabilities = np.exp(model.log_probs)
    probabilities[:, model.vocab.unk_id] *= model.vocab.unknown_types
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert np.isfinite(model.log_probs).all()
    assert model.vocab.words[:2] == ["<eos>", "<unk>"] and model.vocab.bos_id == 50


@pytest.mark.parametrize("min_words", [0, 2])
def test_dp_oracle_equals_brute_force_on_tiny_instance(min_words: int) -> None:
    horizon = 3
    core = make_core(vocab_size=5, context=1, prompt_words=1, max_words=horizon, min_words=min_words)
    eos = core.vocab.eos_id
    start = int(core.window[0, -1])
    best = -np.inf
    for sequence in itertools.product(range(core.vocab.size), repeat=horizon):
        total, previous = 0.0, start
        for t, word in enumerate(sequence):
            total += core.reward_table[previous, word]
            if word == eos:
                total -= core.early_end_costs[t]
                break
            previous = word
        best = max(best, total)
    _, values = core.optimal_actions(horizon)
    assert values[0, start] == pytest.approx(best)

    env = gym.make_vec(
        "nlp_envs/NextWord-v0",
        num_envs=1,
        vectorization_mode="vector_entry_point",
        vocab_size=5,
        context=1,
        prompt_words=1,
        max_words=horizon,
        min_words=min_words,
    )
    observations, _ = env.reset(seed=0)
    oracle = nlp_envs.reference_policy("nlp_envs/NextWord-v0", "oracle")
    total = 0.0
    first = int(env.unwrapped.core.window[0, -1])
    for _ in range(horizon):
        observations, rewards, terminated, truncated, _ = env.step(oracle(observations, env))
        total += rewards[0]
        if terminated[0] or truncated[0]:
            break
    assert total == pytest.approx(values[0, first])


def test_oracle_beats_random_by_far_on_both_rewards() -> None:
    for kwargs in ({}, {"reward": "reference"}):
        oracle = nlp_envs.evaluate("nlp_envs/NextWord-v0", "oracle", episodes=200, env_kwargs=kwargs)
        random = nlp_envs.evaluate("nlp_envs/NextWord-v0", "random", episodes=200, env_kwargs=kwargs)
        assert oracle.mean_return > random.mean_return + 5.0
        assert oracle.metrics["mean_log_prob"] > random.metrics["mean_log_prob"]


def test_reference_oracle_matches_every_word_and_fluency_term_adds() -> None:
    env = gym.make_vec(
        "nlp_envs/NextWord-v0", num_envs=4, vectorization_mode="vector_entry_point", reward="reference", beta=0.5
    )
    observations, _ = env.reset(seed=5)
    core = env.unwrapped.core
    oracle = nlp_envs.reference_policy("nlp_envs/NextWord-v0", "oracle")
    actions = oracle(observations, env)
    previous = core.window[:, -1].copy()
    reference = core.references[core.sentence, core.steps]
    _, rewards, _, _, _ = env.step(actions)
    matched = (actions == reference) & (reference != core.vocab.unk_id)
    np.testing.assert_allclose(rewards, matched + 0.5 * core.model.log_probs[previous, actions])


def test_early_end_is_penalised_only_before_min_words() -> None:
    core = make_core(vocab_size=50, min_words=2, early_end_penalty=7.0)
    previous = int(core.window[0, -1])
    rewards, terminated = core.advance(np.array([core.vocab.eos_id]))
    assert terminated[0]
    assert rewards[0] == pytest.approx(core.model.log_probs[previous, 0] - 7.0)


def test_words_after_the_end_go_to_the_last_position_and_the_metrics_and_text_follow() -> None:
    """Past max_words (a single env stepped on after its end) a word overwrites the last position."""
    core = make_core(vocab_size=50, max_words=3, min_words=3, early_end_penalty=7.0)
    slots = np.zeros(1, dtype=np.int64)
    prompt = core.vocab.decode(core.prompts[core.sentence[0]])
    for word in (5, 6, 7, 8):  # the fourth is past the end
        previous = int(core.window[0, -1])
        rewards, terminated = core.advance(np.array([word]))
        assert rewards[0] == pytest.approx(core.model.log_probs[previous, word]) and not terminated[0]
    assert core.written[0].tolist() == [5, 6, 8] and core.steps.tolist() == [3]  # the count stays at max_words
    assert core.text(0) == f"{prompt} >> {core.vocab.decode([5, 6, 8])}"
    metrics = core.metrics(slots)
    assert metrics["words"][0] == 3
    assert metrics["reference_matches"][0] == np.sum(core.match_targets[core.sentence[0]] == [5, 6, 8])
    first = int(core.prompts[core.sentence[0], -1])
    log_probs = core.model.log_probs[[first, 5, 6], [5, 6, 8]]
    assert metrics["mean_log_prob"][0] == pytest.approx(log_probs.mean())
    # <eos> after the end: min_words are written, so no early-end cost; it is the last word now.
    rewards, terminated = core.advance(np.array([core.vocab.eos_id]))
    assert rewards[0] == pytest.approx(core.model.log_probs[8, core.vocab.eos_id]) and terminated[0]
    assert core.metrics(slots)["words"][0] == 2
    assert core.text(0) == f"{prompt} >> {core.vocab.decode([5, 6, core.vocab.eos_id])}"
    observation = core.observe()[0]
    assert observation[-1] == 3 and observation[-2] == core.vocab.eos_id


@pytest.mark.parametrize("observation", ["tokens", "embedding"])
def test_afterstate_equals_next_observation_before_the_end(observation: str, rng: np.random.Generator) -> None:
    env = gym.make_vec(
        "nlp_envs/NextWord-v0",
        num_envs=8,
        vectorization_mode="vector_entry_point",
        vocab_size=100,
        observation=observation,
    )
    observations, _ = env.reset(seed=1)
    actions = rng.integers(2, 100, size=8)  # no <eos>, so no episode ends
    afterstates = env.unwrapped.afterstate(observations, actions)
    next_observations, *_ = env.step(actions)
    np.testing.assert_allclose(afterstates, next_observations, atol=1e-6)


def test_embedding_observation_passes_the_checker() -> None:
    env = gym.make("nlp_envs/NextWord-v0", observation="embedding", vocab_size=200, embedding_dim=8)
    assert env.observation_space.shape == (3 * 8 + 1,)
    gym_check_env(env.unwrapped)


def test_missing_data_package_error_prints_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    with pytest.raises(MissingDataError, match=r"pip install chitchat-dataset==0\.9\.0"):
        load_corpus.__wrapped__("chitchat")
    assert CHITCHAT.pip_command == "pip install chitchat-dataset==0.9.0"


def test_disk_cache_gives_the_same_corpus(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"we met {i} times. then we left" for i in range(60)), encoding="utf-8")
    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    fresh = load_corpus.__wrapped__(str(path))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    cached = load_corpus.__wrapped__(str(path))
    assert cached.types == fresh.types and cached.train_types == fresh.train_types
    for split in ("train", "test"):
        np.testing.assert_array_equal(cached.ids[split], fresh.ids[split])
        np.testing.assert_array_equal(cached.lengths[split], fresh.lengths[split])
    ids, lengths = fresh.encode("train", 5, width=3)
    assert ids.shape == (len(lengths), 3) and set(np.unique(ids)) <= {-1, 1, 2, 3, 4}


def test_user_text_file_corpus(tmp_path) -> None:
    lines = [f"the cat number {i} sat on the mat. it was happy {i % 7} times!" for i in range(200)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    env = gym.make("nlp_envs/NextWord-v0", corpus=str(path), vocab_size=30, render_mode="ansi")
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert ">>" in info["text"]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (None, ".txt", "does not exist"),
        (b"\xff\xfe bad bytes\n", ".txt", "not UTF-8"),
        (b"", ".txt", "no non-empty texts"),
        (b"body\nhello there\n", ".csv", "no column 'text'"),
        (b"text\nok\n\xffbad\n", ".csv", "line 3"),
    ],
    ids=["missing", "not-utf8", "empty", "missing-column", "utf8-row"],
)
def test_bad_user_corpus_files_name_the_problem(tmp_path, content: bytes | None, suffix: str, message: str) -> None:
    path = tmp_path / f"corpus{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        gym.make("nlp_envs/NextWord-v0", corpus=str(path))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "bleu"}, "reward='bleu'"),
        ({"vocab_size": 2}, "vocab_size"),
        ({"min_words": 30}, "min_words"),
        ({"observation": "pixels"}, "observation"),
    ],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make("nlp_envs/NextWord-v0", **kwargs)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    context=st.integers(1, 4),
    max_words=st.integers(1, 8),
    reward=st.sampled_from(["lm", "reference"]),
    beta=st.floats(0.0, 2.0),
    num_envs=st.integers(1, 6),
)
def test_core_invariants(seed: int, context: int, max_words: int, reward: str, beta: float, num_envs: int) -> None:
    """Rewards finite, observations in the space, every episode ends by the limit."""
    env = gym.make_vec(
        "nlp_envs/NextWord-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        vocab_size=40,
        context=context,
        max_words=max_words,
        min_words=min(2, max_words),
        reward=reward,
        beta=beta,
    )
    rng = np.random.default_rng(seed)
    observations, _ = env.reset(seed=seed)
    length = np.zeros(num_envs, dtype=int)
    for _ in range(3 * max_words):
        observations, rewards, terminated, truncated, _ = env.step(rng.integers(40, size=num_envs))
        assert np.isfinite(rewards).all()
        assert env.observation_space.contains(observations)
        length += 1
        ended = terminated | truncated
        assert (length <= max_words).all()
        np.testing.assert_array_equal(truncated, length == max_words)
        length[ended] = -1  # the next step is the autoreset step, then counting restarts at 0


def test_terminating_on_the_last_allowed_step_is_also_truncated_in_both_views() -> None:
    """Gymnasium's TimeLimit marks the last allowed step truncated; the native vector env agrees."""
    single = gym.make("nlp_envs/NextWordEasy-v0")
    vector = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=1, vectorization_mode="vector_entry_point")
    single.reset(seed=0)
    vector.reset(seed=0)
    for action in (2, 3, 4, 0):  # three words, then <eos> on step 4 = max_words
        _, _, single_terminated, single_truncated, _ = single.step(action)
        _, _, terminated, truncated, _ = vector.step(np.array([action]))
        assert (single_terminated, single_truncated) == (bool(terminated[0]), bool(truncated[0]))
    assert single_terminated and single_truncated
