"""Trust audit 6: offline datasets, TensorBoard folders, env plugins and reports, attacked again.

Each test fails on the code before its fix: a lost or stale result, a silently wrong one, or an
error that does not name its input.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlp_envs.offline import DatasetError, collect
from tests.test_plugin_host import env_plugin_point

MASKED = "nlp_envs/DialogueEasy-v0"
SMALL = {"episodes": 4, "seed": 300_000, "num_envs": 2, "eval_episodes": 2, "dataset_id": "nlp_envs/audit-v0"}


def test_a_minari_folder_that_is_a_file_is_named_before_any_episode_is_played(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "file"))
    played: list[int] = []
    with pytest.raises(
        DatasetError, match=r"folder '.*file' \(MINARI_DATASETS_PATH.* is not a writable folder"
    ) as caught:
        collect(MASKED, "rule", epsilon=0.0, progress=lambda done, total: played.append(done), **SMALL)
    assert "\n" not in str(caught.value)
    assert played == []  # refused before the collection, not after it


def test_a_dataset_written_under_the_id_while_collecting_is_kept_not_deleted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    theirs = tmp_path / "nlp_envs" / "audit-v0" / "data" / "theirs.txt"

    def another_process_writes_the_id(done: int, total: int) -> None:
        theirs.parent.mkdir(parents=True, exist_ok=True)
        theirs.write_text("another collection's dataset")

    with pytest.raises(DatasetError, match=r"'nlp_envs/audit-v0' exists already"):
        collect(MASKED, "rule", epsilon=0.0, progress=another_process_writes_the_id, **SMALL)
    assert theirs.read_text() == "another collection's dataset"


def test_nlp_envs_envs_lists_a_plugin_env_in_its_own_namespace(tmp_path: Path, monkeypatch, fresh_plugins, capsys):
    import gymnasium as gym

    from nlp_envs import plugins as env_plugins
    from nlp_envs.cli import main
    from tests.conftest import make_distribution
    from tests.test_agents_plugins import ENV_PLUGIN

    theirs = "audit6_ns/OwnNamespace-v0"  # the docs tell plugin authors to use their own namespace
    make_distribution(
        tmp_path,
        "own-ns",
        {"own-ns": "t_audit6_envs"},
        {"t_audit6_envs": ENV_PLUGIN.replace("nlp_envs_test/TinyNextWord-v0", theirs)},
        group="nlp_envs.envs",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert env_plugins.register_plugin_envs() == [theirs]
        assert main(["envs"]) == 0
        out = capsys.readouterr().out
        assert f"{theirs}\n  observation" in out
        assert "nlp_envs/NextWord-v0\n" in out
    finally:
        gym.registry.pop(theirs, None)
        env_plugins._ENV_OWNERS.pop(theirs, None)


def test_a_plugin_cannot_register_another_version_of_a_builtin_env(fresh_plugins) -> None:
    import gymnasium as gym

    from nlp_envs import plugins as env_plugins

    point = env_plugin_point("shadow", {"id": "nlp_envs/NextWord-v9", "entry_point": "nlp_envs.next_word:NextWordEnv"})
    registry = env_plugins.load_env_plugins([point])
    try:
        with pytest.warns(env_plugins.PluginWarning, match="another version of the built-in 'nlp_envs/NextWord-v0'"):
            assert env_plugins.register_plugin_envs(registry) == []
        assert "nlp_envs/NextWord-v9" not in gym.registry
    finally:
        gym.registry.pop("nlp_envs/NextWord-v9", None)
        env_plugins._ENV_OWNERS.pop("nlp_envs/NextWord-v9", None)


def test_a_dataset_whose_env_data_file_was_edited_is_refused_not_loaded(tmp_path: Path, monkeypatch) -> None:
    import json

    from nlp_envs.data.ontology import ONTOLOGY_DIR
    from nlp_envs.offline import dataset_metadata, load_transitions

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    bank = json.loads((ONTOLOGY_DIR / "bank.json").read_text(encoding="utf-8"))
    ontology = tmp_path / "ontology.json"
    ontology.write_text(json.dumps(bank), encoding="utf-8")
    settings = SMALL | {"env_kwargs": {"ontology": str(ontology)}}
    collect("nlp_envs/Dialogue-v0", "rule", epsilon=0.0, **settings)
    assert load_transitions("nlp_envs/audit-v0").env_kwargs == {"ontology": str(ontology)}  # as collected
    fewer = dict(bank, intents=dict(list(bank["intents"].items())[:3]))
    ontology.write_text(json.dumps(fewer), encoding="utf-8")  # the env it makes now has 3 intents
    for read in (load_transitions, dataset_metadata):
        with pytest.raises(DatasetError, match=r"collected with ontology='.*ontology.json', and that file changed"):
            read("nlp_envs/audit-v0")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"env_id": "nlp_envs/Dialogue-v0"}, "env_id='nlp_envs/Dialogue-v0' (env_spec: 'nlp_envs/DialogueEasy-v0')"),
        ({"env_kwargs": {"error_rate": 0.5}}, "env_kwargs.error_rate=0.5 (env_spec: 0.0)"),
    ],
)
def test_a_dataset_whose_env_record_was_edited_is_refused_not_loaded(tmp_path: Path, monkeypatch, edit, named) -> None:
    import json

    from nlp_envs.offline import load_transitions

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    collect(MASKED, "rule", epsilon=0.0, **SMALL)
    path = tmp_path / "nlp_envs" / "audit-v0" / "data" / "metadata.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["nlp_envs"] |= edit
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(DatasetError, match="disagrees with Minari's env_spec on " + re.escape(named)):
        load_transitions("nlp_envs/audit-v0")


def test_a_dataset_under_a_named_id_that_is_not_the_definition_is_refused(tmp_path: Path, monkeypatch) -> None:
    from nlp_envs.leaderboard.suites import SuiteError, load_suite
    from tests.test_leaderboard_offline import SUITE, TINY, define_tiny, write_suite

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    define_tiny(tmp_path, monkeypatch, epsilon=0.3)
    load_suite(str(write_suite(tmp_path / "s", SUITE))).prepare_datasets()  # builds the named dataset
    define_tiny(tmp_path, monkeypatch, epsilon=0.6)  # a newer definition under the same id
    with pytest.raises(SuiteError, match=rf"is not the named dataset {TINY} as defined now: its epsilon is 0.3, the"):
        load_suite(str(write_suite(tmp_path / "s", SUITE))).prepare_datasets()


def test_a_dataset_cut_off_before_its_record_was_written_is_called_incomplete(tmp_path: Path, monkeypatch) -> None:
    import json

    from nlp_envs.offline import load_transitions

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    collect(MASKED, "rule", epsilon=0.0, **SMALL)
    path = tmp_path / "nlp_envs" / "audit-v0" / "data" / "metadata.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    del metadata["nlp_envs"]  # as a collection killed between Minari's write and the record's
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"is incomplete: its collection by nlp-envs stopped before it was finished"):
        load_transitions("nlp_envs/audit-v0")


def test_a_second_run_into_a_tensorboard_folder_that_holds_events_is_warned_about(tmp_path: Path) -> None:
    import warnings

    import gymnasium as gym

    import nlp_agents

    env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    nlp_agents.make("qtable", env, tensorboard=tmp_path).learn(10)
    with pytest.warns(UserWarning, match=r"holds 1 event file\(s\) of an earlier run already; TensorBoard draws both"):
        nlp_agents.make("qtable", env, tensorboard=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlp_agents.make("qtable", env, tensorboard=tmp_path / "own")  # a fresh folder: no word


def test_a_dataset_rewritten_between_its_hash_and_its_read_is_not_trained_on(tmp_path: Path, monkeypatch) -> None:
    from nlp_envs import offline
    from nlp_envs.leaderboard import runner
    from nlp_envs.leaderboard.suites import load_suite
    from tests.test_leaderboard_offline import SUITE, TINY, define_tiny, write_suite

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    define_tiny(tmp_path, monkeypatch)
    cell = next(cell for cell in load_suite(str(write_suite(tmp_path / "s", SUITE))).cells() if cell.dataset)
    read = offline.load_transitions

    def rewritten_then_read(source):
        (tmp_path / "minari" / TINY / "data" / "extra.txt").write_text("another writer")
        return read(source)

    monkeypatch.setattr(offline, "load_transitions", rewritten_then_read)
    monkeypatch.setattr(runner, "_LOADED", {})
    with pytest.raises(ValueError, match=rf"dataset {TINY} \(.*\) changed while it was read"):
        runner.load_dataset(cell)
