"""The offline agents (``bc``, ``cql``) and ``iqn``: learning, the dataset contract and its refusals, save/load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import nlp_agents
import nlp_envs
from nlp_agents.base import AgentFileError
from nlp_agents.bc import BCAgent
from nlp_agents.cql import CQLAgent
from nlp_envs.offline import DatasetError, collect, dataset_hash, load_transitions
from tests.conftest import ENV_IDS, collect_transitions, make_vec

EASY = "nlp_envs/NextWordEasy-v0"
MASKED = "nlp_envs/DialogueEasy-v0"
OFFLINE = {"bc": BCAgent, "cql": CQLAgent}
# Small settings: a few hundred gradient steps on a few hundred logged transitions.
LEARN = {"bc": ({}, 400), "cql": ({"target_update_interval": 100}, 800)}


@pytest.fixture(scope="module")
def easy_data():
    """Oracle acts with 20% uniform acts on NextWordEasy-v0 (about 600 transitions)."""
    return collect_transitions(EASY, "oracle", epsilon=0.2, vector_steps=100, seed=0)


@pytest.fixture(scope="module")
def masked_data():
    """Oracle acts with 20% uniform allowed acts on DialogueEasy-v0, an env with action masks."""
    return collect_transitions(MASKED, "oracle", epsilon=0.2, vector_steps=100, seed=0)


def score(env_id: str, agent) -> float:
    return nlp_envs.evaluate(env_id, agent, episodes=300, seed=10**6).normalized_score


# --- learning ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_agents_learn_oracle_logs_of_next_word_easy(name: str, easy_data) -> None:
    hyperparams, steps = LEARN[name]
    agent = OFFLINE[name](make_vec(EASY), seed=0, device="cpu", dataset=easy_data, **hyperparams).learn(steps)
    assert agent.num_timesteps == steps and agent.offline
    assert score(EASY, agent) >= 0.9
    assert score(EASY, "random") < 0.2


@pytest.mark.skipif(MASKED not in ENV_IDS, reason="DialogueEasy-v0 (an env with masks) is not registered")
@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_agents_learn_masked_logs_and_never_pick_a_masked_act(name: str, masked_data) -> None:
    hyperparams, steps = LEARN[name]
    env = make_vec(MASKED, 8)
    agent = OFFLINE[name](env, seed=0, device="cpu", dataset=masked_data, **hyperparams).learn(steps)
    assert score(MASKED, agent) >= 0.9
    observations, _ = env.reset(seed=5)
    n = env.single_action_space.n
    only = np.zeros((8, n), dtype=bool)
    only[np.arange(8), (np.arange(8) * 3) % n] = True
    for deterministic in (True, False):
        np.testing.assert_array_equal(agent.predict(observations, deterministic, action_masks=only), only.argmax(1))


def test_an_all_masked_row_lets_the_target_argmax_range_over_every_act() -> None:
    # A next state that allows nothing (terminal, or an ended slot) used to make the argmax pick act 0.
    from nlp_agents.dqn import td_gradients
    from nlp_agents.networks import build_network

    space = make_vec(EASY).single_observation_space
    online = build_network(space, 5, (8,), 4, seed=0, device=torch.device("cpu"))
    target = build_network(space, 5, (8,), 4, seed=1, device=torch.device("cpu"))
    space.seed(0)
    observations = torch.as_tensor(np.stack([space.sample() for _ in range(6)]))
    batch = {
        "observations": observations,
        "actions": torch.zeros(6, dtype=torch.int64),
        "returns": torch.zeros(6),
        "discounts": torch.ones(6),
        "next_observations": observations,
        "weights": torch.ones(6),
        "next_masks": torch.zeros(6, 5, dtype=torch.bool),
    }
    _, _, _, errors, _ = td_gradients(online, target, batch, double_q=False)
    with torch.no_grad():
        expected = online(observations)[:, 0] - target(observations).max(dim=1).values
    torch.testing.assert_close(errors, expected)


# --- the dataset contract --------------------------------------------------------------------------------


def edited(data, **changes):
    return dataclasses.replace(data, **changes)


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_a_dataset_of_another_env_is_a_named_error(name: str, easy_data) -> None:
    other = "nlp_envs/NextWord-v0"
    with pytest.raises(DatasetError, match=rf"^{name}: dataset .* was collected on 'nlp_envs/NextWordEasy-v0', but "):
        nlp_agents.make(name, make_vec(other), device="cpu", dataset=easy_data)
    with pytest.raises(DatasetError, match=r"with env kwarg vocab_size=99, but the agent's env has vocab_size=12"):
        nlp_agents.make(name, make_vec(EASY), device="cpu", dataset=edited(easy_data, env_kwargs={"vocab_size": 99}))


BAD_DATA = {
    "no transitions": (
        lambda d: edited(d, **{k: getattr(d, k)[:0] for k in ("observations", "actions", "rewards")}),
        "holds no transitions",
    ),
    "short actions": (lambda d: edited(d, actions=d.actions[:-1]), r"actions has shape \(\d+,\); expected"),
    "action out of range": (lambda d: edited(d, actions=d.actions + 100), r"actions must be integers in \[0, 12\)"),
    "float actions": (lambda d: edited(d, actions=d.actions.astype(float)), "actions must be integers"),
    "token id out of range": (
        lambda d: edited(d, observations=d.observations + 50),
        r"observations must be integers inside MultiDiscrete",
    ),
    "wrong observation shape": (lambda d: edited(d, next_observations=d.next_observations[:, :2]), "next_observations"),
    "nan reward": (lambda d: edited(d, rewards=np.where(d.actions == 0, np.nan, d.rewards)), "rewards must be finite"),
    "int terminations": (lambda d: edited(d, terminations=d.terminations.astype(int)), "terminations has dtype"),
    "masks on an unmasked env": (
        lambda d: edited(d, action_masks=np.ones((len(d), 12), bool), next_action_masks=np.ones((len(d), 12), bool)),
        "has action_masks, but the env has no action masks",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_inconsistent_datasets_are_refused_with_one_named_line(case: str, easy_data) -> None:
    change, pattern = BAD_DATA[case]
    with pytest.raises(DatasetError, match=pattern) as caught:
        nlp_agents.make("cql", make_vec(EASY), device="cpu", dataset=change(easy_data))
    assert "\n" not in str(caught.value) and str(caught.value).startswith("cql: ")


@pytest.mark.skipif(MASKED not in ENV_IDS, reason="DialogueEasy-v0 (an env with masks) is not registered")
def test_masks_must_come_with_a_masked_env_and_allow_the_logged_acts(masked_data) -> None:
    env = make_vec(MASKED)
    with pytest.raises(DatasetError, match="lacks action_masks, but the env has action masks"):
        nlp_agents.make("bc", env, device="cpu", dataset=edited(masked_data, action_masks=None))
    forbidden = masked_data.action_masks.copy()
    forbidden[3] = True
    forbidden[3, masked_data.actions[3]] = False
    with pytest.raises(DatasetError, match=r": 1 logged acts are forbidden by their action mask \(first: row 3, act"):
        nlp_agents.make("bc", env, device="cpu", dataset=edited(masked_data, action_masks=forbidden))


def test_dataset_must_be_transitions_or_a_name() -> None:
    env = make_vec(EASY)
    with pytest.raises(DatasetError, match=r"dataset= has type dict; expected nlp_envs.offline.Transitions"):
        nlp_agents.make("cql", env, device="cpu", dataset={"observations": []})


def test_a_minari_dataset_id_or_folder_is_loaded_and_learnt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    collect(
        EASY, "oracle", epsilon=0.2, episodes=200, seed=5_000_000, dataset_id="nlp_envs/easy-oracle-v0", num_envs=16
    )
    env = make_vec(EASY)
    by_id = nlp_agents.make("bc", env, device="cpu", dataset="nlp_envs/easy-oracle-v0")
    assert by_id.dataset_id == "nlp_envs/easy-oracle-v0" and len(by_id.data["actions"]) == len(
        load_transitions(tmp_path / "nlp_envs" / "easy-oracle-v0")
    )
    assert by_id.dataset_hash == dataset_hash("nlp_envs/easy-oracle-v0")
    assert score(EASY, by_id.learn(400)) >= 0.9
    with pytest.raises(DatasetError, match="nlp_envs/missing-v0"):
        nlp_agents.make("cql", env, device="cpu", dataset="nlp_envs/missing-v0")


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_save_load_round_trip_predicts_without_the_dataset(name: str, easy_data, tmp_path) -> None:
    env = make_vec(EASY)
    agent = nlp_agents.make(name, env, seed=1, device="cpu", dataset=easy_data).learn(150)
    path = agent.save(tmp_path / f"{name}.pt")
    loaded = nlp_agents.load(path, make_vec(EASY), device="cpu")
    assert type(loaded) is type(agent) and loaded.num_timesteps == 150 and loaded.data is None
    observations = np.array([env.single_observation_space.sample() for _ in range(64)])
    np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))
    with pytest.raises(
        DatasetError, match=rf"^{name}: learns from a logged dataset and has none; make it with dataset="
    ):
        loaded.learn(10)
    with pytest.raises(AgentFileError, match="was trained on 'nlp_envs/NextWordEasy-v0'"):
        nlp_agents.load(path, make_vec("nlp_envs/NextWord-v0"))


def test_learn_counts_gradient_steps_and_a_callback_can_stop_it(easy_data) -> None:
    seen = []
    agent = nlp_agents.make("cql", make_vec(EASY), device="cpu", dataset=easy_data)
    agent.learn(50, callback=lambda agent, steps: seen.append(steps) or steps < 20)
    assert seen == list(range(1, 21)) and agent.num_timesteps == 20
    agent.learn(5)
    assert agent.num_timesteps == 25


def test_same_seed_same_weights_and_truncations_bootstrap_only_when_asked(easy_data) -> None:
    def weights(seed: int, **hyperparams) -> torch.Tensor:
        agent = nlp_agents.make("cql", make_vec(EASY), seed=seed, device="cpu", dataset=easy_data, **hyperparams)
        return torch.cat([p.flatten() for p in agent.learn(30).q.parameters()])

    torch.testing.assert_close(weights(4), weights(4), rtol=0, atol=0)
    assert not torch.equal(weights(4), weights(5))
    assert not torch.equal(weights(4), weights(4, bootstrap_truncated=True))
    agent = nlp_agents.make("cql", make_vec(EASY), device="cpu", dataset=easy_data, gamma=0.5)
    stops = easy_data.terminations | easy_data.truncations
    assert easy_data.truncations.any()
    np.testing.assert_array_equal(agent.data["discounts"].numpy(), np.where(stops, 0.0, 0.5).astype(np.float32))


# --- iqn (online) ------------------------------------------------------------------------------------------


def test_iqn_reaches_oracle_level_on_next_word_easy() -> None:
    # dqn's test takes 10k steps at its defaults; iqn samples quantiles, so a faster target copy helps.
    env = make_vec(EASY, num_envs=16)
    agent = nlp_agents.make("iqn", env, seed=0, device="cpu", learning_rate=2e-3, target_update_interval=100).learn(
        12_000
    )
    assert score(EASY, agent) >= 0.9


def test_quantile_huber_loss_matches_its_definition() -> None:
    from nlp_agents.iqn import quantile_huber

    generator = torch.Generator().manual_seed(0)
    quantiles, targets = torch.randn(5, 4, generator=generator) * 2, torch.randn(5, 3, generator=generator) * 2
    taus = torch.rand(5, 4, generator=generator)
    expected = torch.zeros(5)
    for row in range(5):
        for i in range(4):
            for j in range(3):
                error = float(targets[row, j] - quantiles[row, i])
                huber = 0.5 * error**2 if abs(error) <= 1.0 else abs(error) - 0.5
                expected[row] += abs(float(taus[row, i]) - (error < 0)) * huber / 3
    torch.testing.assert_close(quantile_huber(quantiles, targets, taus, 1.0), expected)


@pytest.mark.skipif(MASKED not in ENV_IDS, reason="DialogueEasy-v0 (an env with masks) is not registered")
def test_iqn_bootstraps_among_allowed_acts_and_predicts_within_masks(tmp_path, monkeypatch) -> None:
    from nlp_agents import iqn

    env = make_vec(MASKED, 8)
    agent = nlp_agents.make("iqn", env, seed=0, device="cpu", learning_starts=64, batch_size=32, n_taus=4)
    seen = []
    update = iqn.update

    def recording_update(online, target, optimizer, batch, config, generator):
        seen.append("next_masks" in batch and not batch["next_masks"].all())
        return update(online, target, optimizer, batch, config, generator)

    monkeypatch.setattr(iqn, "update", recording_update)
    agent.learn(600)
    assert seen and any(seen)
    observations, _ = env.reset(seed=0)
    n = env.single_action_space.n
    only = np.zeros((8, n), dtype=bool)
    only[np.arange(8), (np.arange(8) * 5) % n] = True
    loaded = nlp_agents.load(agent.save(tmp_path / "iqn.pt"), env, device="cpu")
    for deterministic in (True, False):
        np.testing.assert_array_equal(loaded.predict(observations, deterministic, action_masks=only), only.argmax(1))
    np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))
