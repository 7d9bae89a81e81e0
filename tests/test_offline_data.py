"""Logged datasets (nlp_envs.offline): collect into Minari, read back, named builds, errors; all offline.

Every test writes into its own ``MINARI_DATASETS_PATH`` (a tmp folder), never into ``~/.minari``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
from nlp_envs import offline
from nlp_envs.cli import main
from nlp_envs.evaluation import evaluate, normalized_score
from nlp_envs.offline import DatasetError, collect, load_transitions
from nlp_envs.offline import named as named_module
from nlp_envs.offline.collection import HELD_OUT_SEEDS, METADATA_FIELDS

minari = pytest.importorskip("minari")

MASKED = "nlp_envs/DialogueEasy-v0"  # a task that masks acts
UNMASKED = "nlp_envs/NextWordEasy-v0"
SMALL = {"episodes": 24, "seed": 300_000, "num_envs": 5, "eval_episodes": 8}


@pytest.fixture(autouse=True)
def minari_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Minari datasets folder for each test."""
    folder = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(folder))
    return folder


def small(env_id: str = MASKED, policy: str = "rule", epsilon: float = 0.3, **overrides):
    settings = SMALL | {"dataset_id": "nlp_envs/test-v0"} | overrides
    return collect(env_id, policy, epsilon=epsilon, **settings)


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("env_id", [MASKED, UNMASKED])
def test_collected_episodes_load_in_minari_and_replay_exactly(env_id: str) -> None:
    policy = "rule" if env_id == MASKED else "oracle"
    progress: list[tuple[int, int]] = []
    small(env_id, policy, progress=lambda done, total: progress.append((done, total)))
    dataset = minari.load_dataset("nlp_envs/test-v0")
    assert dataset.total_episodes == SMALL["episodes"] and progress[-1] == (SMALL["episodes"], SMALL["episodes"])
    replay = gym.make(env_id)
    n = replay.action_space.n
    for episode in dataset.iterate_episodes():
        steps = len(episode.actions)
        assert 1 <= steps <= replay.spec.max_episode_steps
        assert episode.observations.shape == (steps + 1, *replay.observation_space.shape)
        assert ((episode.actions >= 0) & (episode.actions < n)).all()
        ends = episode.terminations | episode.truncations
        assert ends[-1] and not ends[:-1].any()
        masks = episode.infos.get("action_mask") if episode.infos else None
        if env_id == MASKED:
            assert masks.shape == (steps + 1, n)
            assert masks[np.arange(steps), episode.actions].all()  # every logged act was allowed
        else:
            assert masks is None
        # Episode k is the first episode of seed + k: the single env replays it step for step.
        observation, _ = replay.reset(seed=SMALL["seed"] + int(episode.id))
        np.testing.assert_array_equal(observation, episode.observations[0])
        for t, action in enumerate(episode.actions):
            observation, reward, terminated, truncated, _ = replay.step(int(action))
            np.testing.assert_array_equal(observation, episode.observations[t + 1])
            assert reward == episode.rewards[t]
            assert (terminated, truncated) == (episode.terminations[t], episode.truncations[t])


def test_metadata_records_how_to_reproduce_and_score() -> None:
    dataset = small()
    ours = dataset.storage.metadata["nlp_envs"]
    assert set(ours) == set(METADATA_FIELDS)
    assert (ours["env_id"], ours["behaviour_policy"], ours["epsilon"], ours["seed"]) == (MASKED, "rule", 0.3, 300_000)
    assert ours["nlp_envs_version"] == nlp_envs.__version__ and ours["num_envs"] == SMALL["num_envs"]


def test_a_dataset_holding_evaluation_episodes_is_flagged() -> None:
    with pytest.warns(UserWarning, match="include evaluation episodes 0 .. 7"):
        dataset = small(seed=5)
    assert dataset.storage.metadata["nlp_envs"]["holds_evaluation_episodes"] is True
    assert small(dataset_id="nlp_envs/held-out-v0").storage.metadata["nlp_envs"]["holds_evaluation_episodes"] is False


def test_recover_environment_gives_the_env_with_its_kwargs() -> None:
    small(env_kwargs={"error_rate": 0.1})
    env = minari.load_dataset("nlp_envs/test-v0").recover_environment()
    assert env.spec.id == MASKED and env.spec.kwargs["error_rate"] == 0.1
    assert isinstance(env.unwrapped, nlp_envs.CoreEnv) and env.unwrapped.env_id == MASKED
    env.close()


def test_minari_normalised_score_is_the_projects() -> None:
    dataset = small(epsilon=0.0)
    ours = dataset.storage.metadata["nlp_envs"]
    reference = evaluate(MASKED, "rule", episodes=SMALL["eval_episodes"], seed=0)
    assert ours["behaviour_return"] == pytest.approx(reference.mean_return)
    assert ours["behaviour_normalized_score"] == pytest.approx(reference.normalized_score)
    assert dataset.storage.metadata["ref_min_score"] == reference.random_return
    assert dataset.storage.metadata["ref_max_score"] == reference.oracle_return
    returns = np.array([-3.0, 0.5, 7.25])
    expected = [normalized_score(r, reference.random_return, reference.oracle_return) for r in returns]
    np.testing.assert_allclose(minari.get_normalized_score(dataset, returns), expected)


def test_epsilon_one_acts_uniformly_among_allowed_acts() -> None:
    dataset = small(epsilon=1.0, episodes=40)
    counts = np.zeros(dataset.action_space.n)
    for episode in dataset.iterate_episodes():
        masks = episode.infos["action_mask"]
        assert masks[np.arange(len(episode.actions)), episode.actions].all()
        np.add.at(counts, episode.actions, 1)
    assert (counts > 0).sum() > 3  # not the rule policy's few acts: random ones


def test_load_transitions_flattens_episodes() -> None:
    dataset = small()
    data = load_transitions("nlp_envs/test-v0")
    episodes = list(dataset.iterate_episodes())
    assert len(data) == dataset.total_steps == sum(len(e.actions) for e in episodes)
    first = episodes[0]
    k = len(first.actions)
    np.testing.assert_array_equal(data.observations[:k], first.observations[:-1])
    np.testing.assert_array_equal(data.next_observations[:k], first.observations[1:])
    np.testing.assert_array_equal(data.action_masks[:k], first.infos["action_mask"][:-1])
    np.testing.assert_array_equal(data.next_action_masks[:k], first.infos["action_mask"][1:])
    assert data.actions.dtype == np.int64 and data.rewards.dtype == np.float32
    assert (data.terminations | data.truncations).sum() == len(episodes)
    assert (data.env_id, data.dataset_id) == (MASKED, "nlp_envs/test-v0")
    assert data.dataset_hash == offline.dataset_hash("nlp_envs/test-v0")
    folder = Path(dataset.spec.data_path)
    for path in (folder.parent, folder, folder / "main_data.hdf5"):  # the dataset's folder, data folder, a file
        by_path = load_transitions(path)
        assert by_path.dataset_hash == data.dataset_hash and len(by_path) == len(data)


def test_unmasked_env_gives_no_masks() -> None:
    small(UNMASKED, "oracle")
    data = load_transitions("nlp_envs/test-v0")
    assert data.action_masks is None and data.next_action_masks is None


def test_same_seed_same_bytes_in_two_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = []
    for name in ("first", "second"):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / name))
        small()
        hashes.append(file_hashes(tmp_path / name))
    assert hashes[0] == hashes[1] and any(path.endswith("main_data.hdf5") for path in hashes[0])
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "third"))
    small(seed=SMALL["seed"] + 1)
    assert file_hashes(tmp_path / "third") != hashes[0]


def test_a_saved_agent_is_a_behaviour_policy(tmp_path: Path) -> None:
    import nlp_agents

    env = gym.make_vec(MASKED, num_envs=2, vectorization_mode="vector_entry_point")
    path = nlp_agents.make("random", env, seed=0).save(tmp_path / "agent") or tmp_path / "agent"
    env.close()
    dataset = small(policy=str(path))
    ours = dataset.storage.metadata["nlp_envs"]
    assert ours["behaviour_policy"] == str(path)
    assert ours["behaviour_policy_sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_named_datasets_are_valid_definitions() -> None:
    named = offline.named_datasets()
    assert {"nlp_envs/dialogue-rule-eps30-v0", "nlp_envs/dialogue-noisy-rule-eps30-v0"} <= set(named)
    envs = {entry.env_id for entry in named.values()}
    assert {"nlp_envs/Dialogue-v0", "nlp_envs/DialogueNoisy-v0", "nlp_envs/Recommendation-v0"} <= envs
    for name, entry in named.items():
        assert minari.dataset.minari_dataset.parse_dataset_id(name)[0] == "nlp_envs"
        assert entry.policy in nlp_envs.reference_policies(entry.env_id)
        assert 0 < entry.epsilon < 1 and entry.seed >= HELD_OUT_SEEDS


@pytest.fixture
def tiny_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A definitions file with one small dataset, in place of the shipped one."""
    path = tmp_path / "named.toml"
    path.write_text(
        '[[dataset]]\nid = "nlp_envs/tiny-v0"\nenv = "nlp_envs/DialogueEasy-v0"\npolicy = "rule"\n'
        "epsilon = 0.3\nepisodes = 20\nseed = 400000\nnum_envs = 4\n"
    )
    monkeypatch.setattr(named_module, "NAMED_DATASETS_FILE", path)
    return "nlp_envs/tiny-v0"


def test_cli_collect_named_twice_gives_the_same_bytes(tiny_named: str, tmp_path: Path, monkeypatch, capsys) -> None:
    hashes = []
    for name in ("a", "b"):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / name))
        assert main(["collect", "--named", tiny_named]) == 0
        hashes.append(file_hashes(tmp_path / name))
    assert hashes[0] == hashes[1]
    out = capsys.readouterr().out
    assert "wrote nlp_envs/tiny-v0: 20 episodes" in out and "transitions/s" in out and "steps/s" in out


def test_cli_collect_from_flags(minari_folder: Path, capsys) -> None:
    argv = ["collect", MASKED, "--policy", "rule", "--epsilon", "0.3", "--episodes", "12", "--seed", "300000"]
    assert main([*argv, "--num-envs", "4", "--dataset-id", "nlp_envs/flags-v0"]) == 0
    assert minari.load_dataset("nlp_envs/flags-v0").total_episodes == 12
    assert main([*argv, "--num-envs", "4", "--dataset-id", "nlp_envs/flags-v0"]) == 2  # exists: one line
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "#" not in line]
    assert len(err) == 1 and "exists already" in err[0] and "nlp_envs/flags-v0" in err[0]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        pytest.param({"epsilon": -0.1}, "epsilon", id="negative-epsilon"),
        pytest.param({"epsilon": 1.5}, "epsilon", id="epsilon-above-one"),
        pytest.param({"epsilon": True}, "epsilon", id="bool-epsilon"),
        pytest.param({"epsilon": float("nan")}, "epsilon", id="nan-epsilon"),
        pytest.param({"epsilon": "0.3"}, "epsilon", id="string-epsilon"),
        pytest.param({"episodes": 0}, "episodes", id="zero-episodes"),
        pytest.param({"episodes": 2.0}, "episodes", id="float-episodes"),
        pytest.param({"seed": -1}, "seed", id="negative-seed"),
        pytest.param({"seed": 2**32 - 3}, "seed", id="seed-past-32-bits"),
        pytest.param({"num_envs": 0}, "num_envs", id="zero-envs"),
        pytest.param({"policy": "genius"}, "genius", id="unknown-policy"),
        pytest.param({"policy": "no/such/agent.pt"}, "agent.pt", id="missing-agent-file"),
        pytest.param({"env_id": "nlp_envs/Nope-v0"}, "Nope", id="unknown-env"),
        pytest.param({"dataset_id": "no-version"}, "no-version", id="id-without-version"),
        pytest.param({"dataset_id": "flat-v0"}, "flat-v0", id="id-without-namespace"),
    ],
)
def test_bad_collect_arguments_are_one_named_error(overrides: dict, names: str, minari_folder: Path) -> None:
    arguments = {"env_id": MASKED, "policy": "rule", "epsilon": 0.3} | SMALL | {"dataset_id": "nlp_envs/x-v0"}
    arguments |= overrides
    with pytest.raises(ValueError) as caught:
        collect(arguments.pop("env_id"), arguments.pop("policy"), **arguments)
    message = str(caught.value)
    assert names in message and "\n" not in message
    assert not (minari_folder / "nlp_envs" / "x-v0").exists()


def test_existing_dataset_is_refused() -> None:
    small()
    with pytest.raises(DatasetError, match="exists already"):
        small()


def test_missing_dataset_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nlp_envs/none-v0.*not found"):
        load_transitions("nlp_envs/none-v0")
    with pytest.raises(DatasetError, match="metadata.json"):
        load_transitions(tmp_path)  # a folder, but not a dataset


def test_corrupt_data_file_is_a_named_error() -> None:
    dataset = small()
    data_file = Path(dataset.spec.data_path) / "main_data.hdf5"
    data_file.write_bytes(data_file.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"'nlp_envs/test-v0' is corrupt"):
        load_transitions("nlp_envs/test-v0")


def test_corrupt_metadata_is_a_named_error() -> None:
    dataset = small()
    (Path(dataset.spec.data_path) / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        load_transitions("nlp_envs/test-v0")


def test_metadata_disagreeing_with_the_data_is_a_named_error() -> None:
    dataset = small()
    path = Path(dataset.spec.data_path) / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["nlp_envs"]["episodes"] = 999
    path.write_text(json.dumps(metadata))
    with pytest.raises(DatasetError, match="holds 24 episodes, its metadata says 999"):
        load_transitions("nlp_envs/test-v0")


def test_dataset_for_an_unregistered_env_is_a_named_error() -> None:
    dataset = small()
    path = Path(dataset.spec.data_path) / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["nlp_envs"]["env_id"] = "nlp_envs/Gone-v0"
    path.write_text(json.dumps(metadata))
    with pytest.raises(DatasetError, match="nlp_envs/Gone-v0, which is not registered"):
        load_transitions("nlp_envs/test-v0")


def test_foreign_minari_dataset_is_a_named_error() -> None:
    env = gym.make("CartPole-v1")
    observation, _ = env.reset(seed=0)
    observations, actions = [observation], []
    for _ in range(3):
        actions.append(env.action_space.sample())
        observations.append(env.step(actions[-1])[0])
    buffer = minari.data_collector.EpisodeBuffer(
        observations=np.stack(observations),
        actions=np.array(actions),
        rewards=[1.0] * 3,
        terminations=[False, False, True],
        truncations=[False] * 3,
    )
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers("other/cartpole-v0", [buffer], env="CartPole-v1")
    with pytest.raises(DatasetError, match="'other/cartpole-v0' was not made by nlp-envs"):
        load_transitions("other/cartpole-v0")
