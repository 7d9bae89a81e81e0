"""Inputs that earlier hardening let through: each test pins one defect found by attacking the CLI and API.

Every case is accepted and correct, or refused with one line (exit 2) that names the input, what is
wrong and what is expected; nothing the user gave is lost or overwritten.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from nlp_envs import cli
from nlp_envs.cli import main
from nlp_envs.leaderboard.store import ResultStore
from tests.test_leaderboard import result

EASY = "nlp_envs/NextWordEasy-v0"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a refused command printed on standard error."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("nlp-envs: error: "), lines[0]
    return lines[0]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A results database with two agents of three seeds each on one env."""
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        for seed in range(3):
            for agent, score in (("a", 0.5), ("b", 0.7)):
                store.add(result(agent=agent, seed=seed, env_id=EASY, normalized_score=score))
    return path


# --- an output path that is an input ----------------------------------------------------------------


@pytest.mark.parametrize("target", ["db", "link", "wal", "journal"])
def test_leaderboard_output_is_never_the_database_it_reads(database: Path, target: str, capsys) -> None:
    before = database.read_bytes()
    output = {
        "db": database,
        "link": database.with_name("link.sqlite"),
        "wal": Path(f"{database}-wal"),
        "journal": Path(f"{database}.pending.jsonl"),
    }[target]
    if target == "link":
        output.symlink_to(database)
    assert main(["leaderboard", "--db", str(database), "--output", str(output)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "--output" in line and "--db" in line and "choose another --output path" in line
    assert database.read_bytes() == before
    with ResultStore(database, readonly=True) as store:
        assert len(store.results()) == 6
    # Another path still works.
    assert main(["leaderboard", "--db", str(database), "--output", str(database.with_name("board.md"))]) == 0


def test_train_save_is_never_a_data_file_of_its_env_kwargs(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus.txt"
    text = "the cat sat on the mat\nthe dog sat on the log\n"
    corpus.write_text(text)
    argv = ["train", "--agent", "random", "--env", EASY, "--steps", "8", "--eval-episodes", "1"]
    argv += ["--env-kwargs", f'{{"corpus": "{corpus}"}}', "--save", str(corpus)]
    assert main(argv) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "--save" in line and "--env-kwargs corpus" in line
    assert corpus.read_text() == text


# --- a damaged results database ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("config = 'not json'", "its config is not JSON"),
        ("returns = '[]'", "returns is []"),
        ("returns = '[1.0, \"x\"]'", "returns[1] is 'x'"),
        ("mean_return = 9e999", "mean_return is inf"),
        ("normalized_score = 'abc'", "normalized_score is 'abc'"),
        ("normalized_score = NULL", "normalized_score is nan"),
        ("metrics = '[1]'", "its metrics is [1], not a JSON dict"),
        ('metrics = \'{"success": "yes"}\'', "metrics['success'] is 'yes'"),
        ("seed = 'x'", "seed"),
        ("learning_curve = '[[1]]'", "learning_curve[0] is [1]"),
        ("versions = 'null'", "its versions is None"),
        ("notes = '{}'", "its notes is {}"),
    ],
)
def test_a_damaged_row_is_one_line_naming_the_row_and_field(database: Path, change: str, named: str, capsys) -> None:
    with sqlite3.connect(database) as connection:
        rowid = connection.execute("SELECT rowid FROM cells WHERE agent = 'b' AND seed = 1").fetchone()[0]
        connection.execute(f"UPDATE cells SET {change} WHERE rowid = ?", (rowid,))
    connection.close()
    for command in (["leaderboard", "--format", "json"], ["leaderboard"]):
        assert main([*command, "--db", str(database)]) == cli.EXIT_USER_ERROR
        line = one_error_line(capsys)
        assert str(database) in line and f"rowid {rowid}" in line and "'b'" in line, line
        assert named in line and f"DELETE FROM cells WHERE rowid = {rowid}" in line, line
    # Deleting the row, as the line says, gives the leaderboard of the others back.
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM cells WHERE rowid = ?", (rowid,))
    connection.close()
    assert main(["leaderboard", "--db", str(database)]) == 0


def test_a_cells_table_without_its_columns_is_refused_by_name(database: Path, capsys) -> None:
    with sqlite3.connect(database) as connection:
        connection.executescript("DROP TABLE cells; CREATE TABLE cells (x)")
    connection.close()
    for argv in (["leaderboard", "--db", str(database)], ["bench", "--suite", "smoke", "--db", str(database)]):
        assert main(argv) == cli.EXIT_USER_ERROR
        line = one_error_line(capsys)
        assert str(database) in line and "no column 'suite'" in line, line


# --- stale or pooled cells ----------------------------------------------------------------------------


def test_a_database_of_two_suites_needs_suite_to_be_shown(tmp_path: Path, capsys) -> None:
    # `bench --suite smoke` then `bench --suite default` share results/leaderboard.sqlite by default;
    # pooled, the seeds of one suite overwrote the other's in the aggregates (7 cells shown as 5 seeds).
    db = tmp_path / "two.sqlite"
    with ResultStore(db) as store:
        for seed in range(2):
            store.add(result(suite="smoke", agent="dqn", seed=seed, env_id=EASY, normalized_score=0.13))
        for seed in range(5):
            store.add(result(suite="default", agent="dqn", seed=seed, env_id=EASY, normalized_score=0.77))
    assert main(["leaderboard", "--db", str(db)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "2 suites ('default', 'smoke')" in line and "--suite" in line
    assert main(["leaderboard", "--db", str(db), "--suite", "smoke"]) == 0
    shown = capsys.readouterr().out
    assert "0.130" in shown and "0.770" not in shown  # the one suite's cells, none of the other's


def test_seeds_of_an_edited_suite_are_flagged_in_every_format(tmp_path: Path, capsys) -> None:
    from nlp_envs.leaderboard.report import MIXED_CONFIGS_NOTE

    db = tmp_path / "mixed.sqlite"
    with ResultStore(db) as store:
        for seed in range(3):
            store.add(result(agent="dqn", seed=seed, normalized_score=0.2, config_hash="old"))
            store.add(result(agent="qtable", seed=seed, normalized_score=0.5, config_hash="same"))
        store.add(result(agent="dqn", seed=0, normalized_score=0.9, config_hash="new"))  # the edited suite, 1 seed
    for output in ("table", "markdown", "json", "html"):
        assert main(["leaderboard", "--db", str(db), "--format", output]) == 0
        text = capsys.readouterr().out
        assert MIXED_CONFIGS_NOTE in text, output
    assert main(["leaderboard", "--db", str(db), "--format", "table"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("qtable")]
    assert rows and all(MIXED_CONFIGS_NOTE not in row for row in rows)


def test_a_named_entry_whose_id_changed_is_not_taken_as_done(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "named.toml"
    text = """
name = "named"
seeds = 1
steps = 32
num_envs = 2
eval_episodes = 2
curve_points = 1
curve_episodes = 2

[[envs]]
id = "{id}"
name = "Easy"

[agents.random]
"""
    db = tmp_path / "named.sqlite"
    suite.write_text(text.format(id=EASY))
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == 0
    capsys.readouterr()
    suite.write_text(text.format(id="nlp_envs/SentimentBandit-v0"))
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("nlp-envs: error: ") and "'Easy'" in last and "SentimentBandit-v0" in last
    assert EASY in last and "new name" in last
    with ResultStore(db, readonly=True) as store:
        assert [row.env_id for row in store.results()] == [EASY]


# --- offline datasets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dialogue_logs():
    """Logged transitions of DialogueEasy-v0 as registered (no env kwargs: its preset error_rate 0.0)."""
    from tests.conftest import collect_transitions

    return collect_transitions("nlp_envs/DialogueEasy-v0", "rule", epsilon=0.2, vector_steps=20, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"error_rate": 0.3}, "error_rate=0.0"),
        ({"max_episode_steps": 3}, "max_episode_steps=10"),
        ({"patience": 2}, "patience=6"),
    ],
)
@pytest.mark.parametrize("agent", ["bc", "cql"])
def test_an_env_made_with_other_kwargs_than_the_dataset_is_refused(dialogue_logs, agent, kwargs, named) -> None:
    # The dataset records no kwargs; an env that sets one away from the preset is another task (the
    # same change through a registered id, DialogueNoisy-v0 against Dialogue-v0, was already refused).
    import nlp_agents
    from nlp_envs.offline import DatasetError
    from tests.conftest import make_vec

    key, value = next(iter(kwargs.items()))
    with pytest.raises(DatasetError, match=rf"collected with env kwarg {named} .*the agent's env has {key}={value}"):
        nlp_agents.make(agent, make_vec("nlp_envs/DialogueEasy-v0", **kwargs), device="cpu", dataset=dialogue_logs)
    # The preset's own values, given explicitly, and kwargs that leave the task as it is are accepted.
    same = make_vec("nlp_envs/DialogueEasy-v0", error_rate=0.0, patience=6, max_episode_steps=10, info_text=True)
    assert nlp_agents.make(agent, same, device="cpu", dataset=dialogue_logs).dataset_hash == dialogue_logs.dataset_hash


@pytest.mark.parametrize("agent", ["vlearner", "dqn"])
def test_a_saved_learning_agent_is_a_behaviour_policy(agent: str, tmp_path: Path, monkeypatch) -> None:
    # Agents that learn in NEXT_STEP autoreset refused the DISABLED env collect steps ("its saved config
    # does not build a dqn agent here"): only the random agent's file could be collected from.
    import gymnasium as gym
    import numpy as np

    import nlp_agents
    from nlp_envs import offline
    from nlp_envs.offline import load_transitions

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    masked = "nlp_envs/DialogueEasy-v0"
    env = gym.make_vec(masked, num_envs=2, vectorization_mode="vector_entry_point")
    trained = nlp_agents.make(agent, env, seed=0, device="cpu").learn(64)
    path = trained.save(tmp_path / f"{agent}.pt") or tmp_path / f"{agent}.pt"
    dataset = offline.collect(masked, str(path), epsilon=0.0, episodes=6, seed=300_000, dataset_id="test/agent-v0")
    assert dataset.storage.metadata["nlp_envs"]["behaviour_policy"] == str(path)
    data = load_transitions("test/agent-v0")
    # With epsilon 0 every logged act is the agent's greedy act among the allowed ones.
    expected = trained.predict(data.observations, deterministic=True, action_masks=data.action_masks)
    np.testing.assert_array_equal(data.actions, expected)
    assert (
        main(["collect", masked, "--policy", str(path), "--epsilon", "0.5", "--episodes", "3"] + ["--seed", "300000"])
        == 0
    )


# --- agent seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["dqn", "vlearner", "iqn", "random"])
def test_an_agent_seed_beyond_64_bits_is_a_named_error_and_the_largest_works(agent: str, tmp_path: Path) -> None:
    import nlp_agents
    from nlp_agents.base import MAX_AGENT_SEED, AgentFileError, HyperparameterError
    from tests.conftest import make_vec

    env = make_vec(EASY, num_envs=2)
    with pytest.raises(HyperparameterError, match=rf"^{agent}: seed must be at most {MAX_AGENT_SEED} .*got {2**64}"):
        nlp_agents.make(agent, env, seed=2**64, device="cpu")  # was torch's "Overflow when unpacking long long"
    largest = nlp_agents.make(agent, env, seed=MAX_AGENT_SEED, device="cpu").learn(8)
    path = largest.save(tmp_path / "agent.pt") or tmp_path / "agent.pt"
    assert nlp_agents.load(path, env).seed == MAX_AGENT_SEED
    # An edited file with a seed torch cannot take names the file.
    import json

    import torch

    payload = torch.load(path, weights_only=True)
    header = json.loads(payload.pop("nlp_envs_agent")) | {"seed": 2**70}
    payload.pop("sha256", None)
    torch.save({"nlp_envs_agent": json.dumps(header), **payload}, tmp_path / "edited.pt")
    with pytest.raises(AgentFileError, match=r"edited.pt'.*seed must be at most"):
        nlp_agents.load(tmp_path / "edited.pt", env)


# --- data files edited between two gym.make calls of one process --------------------------------------


def _edit(path: Path, text: str) -> None:
    """Replace a file's content (a new size, so that the stamp differs even on a coarse clock)."""
    path.write_text(text, encoding="utf-8")


def test_an_edited_corpus_is_read_again_not_served_from_the_process_cache(tmp_path: Path, monkeypatch) -> None:
    import gymnasium as gym

    import nlp_envs  # noqa: F401  (registers the ids)

    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    _edit(corpus, "\n".join(f"alpha beta gamma {i}. delta alpha beta" for i in range(60)))
    first = gym.make("nlp_envs/NextWord-v0", corpus=str(corpus), vocab_size=20).unwrapped.core.vocab.words
    assert "alpha" in first and "zulu" not in first
    _edit(corpus, "\n".join(f"zulu yankee xray {i}. whiskey zulu yankee victor" for i in range(70)))
    second = gym.make("nlp_envs/NextWord-v0", corpus=str(corpus), vocab_size=20).unwrapped.core.vocab.words
    assert "zulu" in second and "alpha" not in second  # was the old vocabulary: the path was the cache key


def test_an_edited_classification_dataset_and_ontology_are_read_again(tmp_path: Path) -> None:
    import json

    import gymnasium as gym

    import nlp_envs  # noqa: F401
    from nlp_envs.data.ontology import ONTOLOGY_DIR

    dataset = tmp_path / "docs.csv"
    rows = "".join(f"the {word} number {i} is here,{label}\n" for i in range(30) for word, label in [("cat", "pets")])
    _edit(dataset, "text,label\n" + rows + "".join(f"the car number {i} goes,cars\n" for i in range(30)))
    labels = gym.make("nlp_envs/TextClassification-v0", dataset=str(dataset)).unwrapped.core.label_names
    assert sorted(labels) == ["cars", "pets"]
    _edit(dataset, "text,label\n" + "".join(f"a song number {i} plays,music\n" for i in range(30)) + rows)
    labels = gym.make("nlp_envs/TextClassification-v0", dataset=str(dataset)).unwrapped.core.label_names
    assert sorted(labels) == ["music", "pets"]

    bank = json.loads((ONTOLOGY_DIR / "bank.json").read_text(encoding="utf-8"))
    ontology = tmp_path / "ontology.json"
    _edit(ontology, json.dumps(bank))
    before = gym.make("nlp_envs/Dialogue-v0", ontology=str(ontology)).unwrapped.core.ontology
    fewer = dict(bank, intents=dict(list(bank["intents"].items())[:3]))
    _edit(ontology, json.dumps(fewer, indent=1))
    after = gym.make("nlp_envs/Dialogue-v0", ontology=str(ontology)).unwrapped.core.ontology
    assert after.n_intents == 3 < before.n_intents


# --- evaluate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"episodes": True}, "episodes must be a positive integer"),
        ({"seed": None}, "seed must be a non-negative integer"),  # the references ran on other, random episodes
        ({"seed": True}, "seed must be a non-negative integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"env_kwargs": []}, "env_kwargs must be a dict"),
        ({"env_kwargs": "split=test"}, "env_kwargs must be a dict"),
    ],
)
def test_evaluate_refuses_arguments_that_would_score_other_episodes(kwargs, named) -> None:
    import nlp_envs

    with pytest.raises(ValueError, match=named):
        nlp_envs.evaluate(EASY, "random", **{"episodes": 2, **kwargs})


def test_evaluate_takes_numpy_env_kwargs_as_gym_make_does() -> None:
    import numpy as np

    import nlp_envs

    # The reference cache round-tripped kwargs through JSON with default=str: np.float32(0.5) became '0.5'.
    plain = nlp_envs.evaluate(EASY, "random", episodes=4, env_kwargs={"beta": 0.5, "max_words": 3})
    numpy = nlp_envs.evaluate(
        EASY, "random", episodes=4, env_kwargs={"beta": np.float32(0.5), "max_words": np.int64(3)}
    )
    assert numpy.random_return == plain.random_return and numpy.oracle_return == plain.oracle_return
    np.testing.assert_array_equal(numpy.returns, plain.returns)


def test_evaluate_scores_the_references_again_on_an_edited_corpus(tmp_path: Path, monkeypatch) -> None:
    import nlp_envs

    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    _edit(corpus, "\n".join(f"alpha beta gamma {i}. delta alpha beta" for i in range(60)))
    kwargs = {"corpus": str(corpus), "vocab_size": 20}
    nlp_envs.evaluate("nlp_envs/NextWord-v0", "oracle", episodes=8, env_kwargs=kwargs)
    _edit(corpus, "\n".join(f"zulu yankee xray {i} whiskey. zulu yankee victor tango {i % 7}" for i in range(90)))
    scored = nlp_envs.evaluate("nlp_envs/NextWord-v0", "oracle", episodes=8, env_kwargs=kwargs)
    # Scoring the random policy itself plays it now, on the edited corpus: the reference must agree.
    played = nlp_envs.evaluate("nlp_envs/NextWord-v0", "random", episodes=8, env_kwargs=kwargs)
    assert scored.random_return == played.mean_return


# --- suite files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_suite_name_is_refused_before_any_cell_trains(tmp_path: Path, name: str, capsys) -> None:
    # It keys every stored cell: each cell trained, then failed to be stored ("suite is ''").
    suite = tmp_path / "suite.toml"
    suite.write_text(f'name = "{name}"\nsteps = 8\nnum_envs = 2\n\n[[envs]]\nid = "{EASY}"\n\n[agents.random]\n')
    db = tmp_path / "results.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert str(suite) in line and "name must be a non-empty string" in line
    assert not db.exists()


def test_two_env_names_that_share_a_tensorboard_run_folder_are_refused(tmp_path: Path, capsys) -> None:
    # Both names become the folder "__": the second cell replaced the first one's event files.
    text = (
        'name = "tb"\nseeds = 1\nsteps = 16\nnum_envs = 2\neval_episodes = 2\ncurve_points = 1\ncurve_episodes = 2\n\n'
        '[[envs]]\nid = "{id}"\nname = "{first}"\n\n'
        '[[envs]]\nid = "{id}"\nname = "{second}"\nkwargs = {{ beta = 0.5 }}\n\n'
        "[agents.random]\n"
    )
    suite, db, runs = tmp_path / "tb.toml", tmp_path / "tb.sqlite", tmp_path / "runs"
    suite.write_text(text.format(id=EASY, first="情感", second="主题"), encoding="utf-8")
    argv = ["bench", "--suite", str(suite), "--db", str(db), "--tensorboard", str(runs)]
    assert main(argv) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "--tensorboard" in line and "'情感'" in line and "'主题'" in line and "share the run folder" in line
    assert not db.exists() and not runs.exists()
    suite.write_text(text.format(id=EASY, first="sentiment 1", second="sentiment 2"), encoding="utf-8")
    assert main(argv) == 0
    folders = sorted(path.parent.parent.name for path in runs.rglob("events.out.tfevents.*"))
    assert folders == ["sentiment_1", "sentiment_2"]


# --- evaluation widths that cannot fit, found before the training -------------------------------------


def test_train_refuses_eval_episodes_that_cannot_fit_before_training(monkeypatch, capsys) -> None:
    monkeypatch.setenv("NLP_ENVS_MEMORY_LIMIT", "100M")  # one Dialogue slot per episode: 131,072 need ~180 MiB
    argv = ["train", "--agent", "random", "--env", "nlp_envs/DialogueEasy-v0", "--steps", "64"]
    assert main([*argv, "--eval-episodes", "131072"]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert "training" not in captured.out  # refused before, not after, the training
    line = [text for text in captured.err.splitlines() if text.strip()][-1]
    assert line.startswith("nlp-envs: error: --eval-episodes 131072: ") and "NLP_ENVS_MEMORY_LIMIT" in line


def test_bench_refuses_eval_episodes_that_cannot_fit_before_any_cell(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NLP_ENVS_MEMORY_LIMIT", "100M")
    suite = tmp_path / "wide.toml"
    suite.write_text(
        'name = "wide"\nseeds = 1\nsteps = 64\nnum_envs = 2\neval_episodes = 131072\ncurve_points = 1\n'
        'curve_episodes = 2\n\n[[envs]]\nid = "nlp_envs/DialogueEasy-v0"\n\n[agents.random]\n'
    )
    db = tmp_path / "wide.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)  # was: every cell trained, then failed building its evaluation env
    assert str(suite) in line and "eval_episodes = 131,072" in line and "nlp_envs/DialogueEasy-v0" in line
    assert not db.exists()


# --- damaged dataset metadata ---------------------------------------------------------------------------


@pytest.fixture
def logged(tmp_path: Path, monkeypatch) -> Path:
    """A small logged dataset of DialogueEasy-v0, as a folder of its own."""
    from nlp_envs import offline

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    offline.collect(
        "nlp_envs/DialogueEasy-v0", "rule", epsilon=0.2, episodes=6, seed=300_000, dataset_id="test/logs-v0"
    )
    return tmp_path / "minari" / "test" / "logs-v0"


def _edit_record(dataset: Path, **changes: object) -> None:
    import json

    path = dataset / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            del metadata["nlp_envs"][key]
        else:
            metadata["nlp_envs"][key] = value
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"env_kwargs": ["x"]}, "nlp_envs.env_kwargs is ['x'], expected an object"),  # was: dict() of a list
        ({"episodes": "6"}, "nlp_envs.episodes is '6', expected an integer"),  # was: "holds 6, metadata says 6"
        ({"behaviour_return": "abc"}, "nlp_envs.behaviour_return is 'abc', expected a finite number"),
        ({"eval_seed": -1}, "nlp_envs.eval_seed is -1"),
        ({"epsilon": 2}, "nlp_envs.epsilon is 2"),
    ],
)
def test_a_damaged_dataset_record_is_named(logged: Path, changes: dict, named: str) -> None:
    from nlp_envs.offline import DatasetError, load_transitions

    _edit_record(logged, **changes)
    with pytest.raises(DatasetError, match=rf"^dataset .* is corrupt: in .*metadata.json, {re.escape(named)}"):
        load_transitions(str(logged))


def test_an_offline_entry_without_a_behaviour_return_is_refused_before_any_cell(logged: Path, capsys) -> None:
    # Its NaN in the cells' config could not be stored: the bench stopped after the first cell's training.
    _edit_record(logged, behaviour_return=...)
    suite = logged.parent / "suite.toml"
    suite.write_text(f'name = "o"\nseeds = 1\nsteps = 8\n\n[[offline]]\ndataset = "{logged}"\nagents = ["bc"]\n')
    db = logged.parent / "o.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("nlp-envs: error: ") and "no nlp_envs.behaviour_return" in last


def test_a_result_json_cannot_hold_is_refused_by_name_not_a_crash(tmp_path: Path) -> None:
    from nlp_envs.leaderboard.store import InvalidResultError

    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(InvalidResultError, match=r"^cell a on e seed 0: config cannot be stored as JSON"):
            store.add(result(config={"dataset": {"behaviour_return": float("nan")}}))
        assert store.results() == []


def test_vlearner_epochs_are_bounded_so_that_learning_always_ends() -> None:
    # epochs=10**6 was accepted (any size up to 2**31 - 1): learn(16) then ran for hours, and the
    # property test of hyper-parameter values hung whenever it drew such a value.
    import nlp_agents
    from nlp_agents.base import HyperparameterError
    from nlp_agents.vlearner import MAX_EPOCHS
    from tests.conftest import make_vec

    env = make_vec(EASY, 2)
    with pytest.raises(HyperparameterError, match=rf"^vlearner: hyper-parameter epochs must be in \[1, {MAX_EPOCHS}\]"):
        nlp_agents.make("vlearner", env, device="cpu", epochs=10**6)
    assert nlp_agents.make("vlearner", env, device="cpu", epochs=MAX_EPOCHS).config.epochs == MAX_EPOCHS


@pytest.mark.parametrize("field", ["eval_episodes", "curve_episodes"])
def test_episodes_beyond_one_seed_block_are_refused_when_the_suite_loads(tmp_path: Path, field: str, capsys) -> None:
    # The suite took up to 1,000,000; the runner refused more than 2**17 after opening the database, in
    # a line that named neither the suite file nor the field's entry.
    from nlp_envs.leaderboard.runner import SEED_STRIDE
    from nlp_envs.leaderboard.suites import LIMITS

    assert LIMITS[field] == SEED_STRIDE
    suite = tmp_path / "wide.toml"
    suite.write_text(
        f'name = "w"\nsteps = 8\n{field} = {SEED_STRIDE + 1}\n\n[[envs]]\nid = "{EASY}"\n\n[agents.random]\n'
    )
    db = tmp_path / "w.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert str(suite) in line and f"{field} = {SEED_STRIDE + 1:,} is over the limit of {SEED_STRIDE:,}" in line
    assert not db.exists()
