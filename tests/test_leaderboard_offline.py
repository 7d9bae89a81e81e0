"""Offline cells on the leaderboard: ``[[offline]]`` suite entries, their datasets, records and reference row.

Every test writes datasets into its own ``MINARI_DATASETS_PATH`` (a tmp folder) and replaces the
shipped named datasets with a tiny one, so nothing here builds a real named dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlp_envs.cli import main
from nlp_envs.leaderboard import report
from nlp_envs.leaderboard.runner import cell_key, run_cell
from nlp_envs.leaderboard.store import ResultStore
from nlp_envs.leaderboard.suites import SuiteError, load_suite

pytest.importorskip("minari")
from nlp_envs.offline import dataset_hash, dataset_metadata  # noqa: E402  (needs minari only when loading)
from nlp_envs.offline import named as named_module  # noqa: E402

TINY = "nlp_envs/tiny-v0"
EASY = "nlp_envs/DialogueEasy-v0"
NAMED = (
    '[[dataset]]\nid = "nlp_envs/tiny-v0"\nenv = "nlp_envs/DialogueEasy-v0"\npolicy = "rule"\n'
    "epsilon = {epsilon}\nepisodes = 20\nseed = 400000\nnum_envs = 4\n"
)
SUITE = f"""
name = "offline-test"
seeds = 1
steps = 64
num_envs = 2
eval_episodes = 10
curve_points = 2
curve_episodes = 4

[[envs]]
id = "{EASY}"

[agents.random]

[[offline]]
dataset = "{TINY}"
agents = ["bc", "cql"]
gradient_steps = 30
"""


@pytest.fixture(autouse=True)
def minari_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Minari datasets folder for each test."""
    folder = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(folder))
    return folder


def define_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epsilon: float = 0.3) -> None:
    """Replace the shipped named datasets by one tiny definition (20 episodes of DialogueEasy-v0)."""
    path = tmp_path / f"named-{epsilon}.toml"
    path.write_text(NAMED.format(epsilon=epsilon), encoding="utf-8")
    monkeypatch.setattr(named_module, "NAMED_DATASETS_FILE", path)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    define_tiny(tmp_path, monkeypatch)
    return TINY


def write_suite(folder: Path, text: str = SUITE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_offline_cell_runs_into_the_store_is_skipped_when_done_and_reruns_when_the_data_changes(
    tiny: str, tmp_path: Path, minari_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    suite, db = write_suite(tmp_path / "s"), tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert f"building the named dataset {TINY}" in err and "deterministic" in err
    with ResultStore(db, readonly=True) as store:
        results = store.results()
    offline = {result.agent: result for result in results if result.agent in ("bc", "cql")}
    online = next(result for result in results if result.agent == "random")
    digest = dataset_hash(TINY)
    for result in offline.values():
        record = result.config["dataset"]
        assert record["id"] == TINY and record["sha256"] == digest
        assert record["behaviour"] == "behaviour (rule, eps 0.3)"
        assert result.env_id == EASY and result.env_name == TINY
        assert result.train_steps == 30 and [point[0] for point in result.learning_curve] == [15.0, 30.0]
        # Scored exactly as the online cells: the same held-out episodes, so the same references.
        assert (result.random_return, result.oracle_return) == (online.random_return, online.oracle_return)
        assert len(result.returns) == 10

    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert "0 cells run, 3 already done" in err and "building" not in err

    shutil.rmtree(minari_folder / TINY)
    define_tiny(tmp_path, monkeypatch, epsilon=0.6)  # other data under the same id
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert "2 cells run, 1 already done" in err
    with ResultStore(db, readonly=True) as store:
        hashes = {result.config["dataset"]["sha256"] for result in store.results() if result.agent == "cql"}
    assert hashes == {digest, dataset_hash(TINY)} and digest != dataset_hash(TINY)


def test_the_report_shows_the_behaviour_policy_beside_random_and_oracle(
    tiny: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    suite, db = write_suite(tmp_path / "s"), tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db), "--agents", "bc"]) == 0
    capsys.readouterr()
    ours = dataset_metadata(TINY)["nlp_envs"]
    with ResultStore(db, readonly=True) as store:
        board = report.build(store.results(), rng=np.random.default_rng(0), repetitions=50)
    assert set(board.behaviours) == {TINY}  # the offline row only; the online env has none
    reference = board.behaviours[TINY]
    assert reference.mean_return == pytest.approx(ours["behaviour_return"])
    assert reference.normalized_score == pytest.approx(ours["behaviour_normalized_score"])
    text = report.render(board, "table")
    table = text[text.index(f"\n{TINY}\n") :]
    lines = [line for line in table.splitlines() if line.startswith(("random (ref.)", "oracle (ref.)", "behaviour"))]
    assert [line.split("  ")[0] for line in lines] == [
        "random (ref.)",
        "oracle (ref.)",
        "behaviour (rule, eps 0.3) (ref.)",
    ]
    assert f"{ours['behaviour_normalized_score']:.3f}" in lines[2]
    assert report.markdown_escape("behaviour (rule, eps 0.3)") in report.render(board, "markdown")
    (entry,) = json.loads(report.render(board, "json"))
    behaviours = {item["dataset"]["name"]: item.get("behaviour") for item in entry["results"]}
    assert behaviours[TINY] == {
        "label": "behaviour (rule, eps 0.3)",
        "dataset": TINY,
        "sha256": dataset_hash(TINY),
        "mean_return": pytest.approx(ours["behaviour_return"], abs=1e-4),
        "normalized_score": pytest.approx(ours["behaviour_normalized_score"], abs=1e-4),
        "eval_episodes": reference.eval_episodes,
        "eval_seed": reference.eval_seed,
    }
    assert all(value is None for name, value in behaviours.items() if name != TINY)  # online rows have none
    assert main(["leaderboard", "--db", str(db)]) == 0
    assert "behaviour (rule, eps 0.3) (ref.)" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    assert "behaviour (rule, eps 0.3) (ref.)" in report.render(board, "html")  # the row, and a line in the plot


def test_a_dataset_changed_after_the_cells_were_made_fails_the_cell_by_name(
    tiny: str, tmp_path: Path, minari_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(str(write_suite(tmp_path / "s")))
    cell = suite.cells(agents=["bc"])[0]
    assert cell.dataset is not None and cell.dataset.sha256 == dataset_hash(TINY)
    shutil.rmtree(minari_folder / TINY)
    define_tiny(tmp_path, monkeypatch, epsilon=0.6)
    named_module.build_named(TINY)
    with pytest.raises(ValueError, match=r"changed since the suite was read.*run the suite again"):
        run_cell(cell)


def test_a_dataset_folder_counts_by_content_not_by_path(tiny: str, tmp_path: Path, minari_folder: Path) -> None:
    named_module.build_named(TINY)
    for name in ("a", "b"):
        shutil.copytree(minari_folder / TINY, tmp_path / name / "logs")
    text = SUITE.replace(f'dataset = "{TINY}"', 'dataset = "logs"\nname = "logs"')
    cells = [load_suite(str(write_suite(tmp_path / name, text))).cells(agents=["cql"])[0] for name in ("a", "b")]
    assert cells[0].dataset is not None and cells[0].dataset.source == str((tmp_path / "a" / "logs").resolve())
    assert cells[0].dataset.id == TINY and cells[0].env.id == EASY
    assert cell_key(cells[0]) == cell_key(cells[1])


def test_offline_cells_are_a_lazy_sequence_with_their_own_seeds(tiny: str, tmp_path: Path) -> None:
    text = SUITE.replace("gradient_steps = 30", "gradient_steps = 30\nseeds = 3")
    suite = load_suite(str(write_suite(tmp_path / "s", text)))
    cells = suite.cells()
    assert len(cells) == 1 + 2 * 3 and list(cells) == [cells[index] for index in range(len(cells))]
    assert [(cell.agent, cell.seed) for cell in cells[1:4]] == [("bc", 0), ("bc", 1), ("bc", 2)]
    assert len(suite.cells(seeds=2)) == 2 + 2 * 2  # --seeds sets every entry's seeds
    assert [cell.agent for cell in suite.cells(envs=[TINY])] == ["bc"] * 3 + ["cql"] * 3
    assert [cell.agent for cell in suite.cells(envs=[EASY])] == ["random"] + ["bc"] * 3 + ["cql"] * 3
    assert len(suite.cells(agents=["random"])) == 1
    assert suite.cells(agents=["cql"], envs=[TINY])[0].env.steps == 30


def test_a_suite_of_offline_entries_only_needs_no_envs(tiny: str, tmp_path: Path) -> None:
    text = SUITE[: SUITE.index("[[envs]]")] + SUITE[SUITE.index("[[offline]]") :]
    suite = load_suite(str(write_suite(tmp_path / "s", text)))
    suite.check()
    assert suite.envs == () and [cell.agent for cell in suite.cells()] == ["bc", "cql"]


def test_offline_hyper_parameters_reach_the_agent_and_the_identity(tiny: str, tmp_path: Path) -> None:
    text = SUITE.replace(
        'agents = ["bc", "cql"]\ngradient_steps = 30',
        "gradient_steps = 30\n[offline.agents.cql]\nalpha = 0.5\nbatch_size = 16",
    )
    suite = load_suite(str(write_suite(tmp_path / "s", text)))
    suite.check()
    (cell,) = suite.cells(agents=["cql"])
    assert cell.hyperparams == {"alpha": 0.5, "batch_size": 16}
    (plain,) = load_suite(str(write_suite(tmp_path / "t"))).cells(agents=["cql"])
    assert cell.config_hash != plain.config_hash


def test_the_shipped_suites_train_the_named_datasets_offline_and_iqn_online() -> None:
    named = set(named_module.named_datasets())
    for name in ("default", "full"):
        suite = load_suite(name)
        assert "iqn" in suite.agents
        assert {entry.dataset for entry in suite.offline} == named
        assert all(set(entry.agents) == {"bc", "cql"} and entry.named for entry in suite.offline)
    load_suite("default").check()  # checks the offline entries without building a dataset


OFFLINE_ERRORS = [
    pytest.param({"dataset": '"nlp_envs/nope-v0"'}, "dataset 'nlp_envs/nope-v0' is not a named dataset", id="unknown"),
    pytest.param({"dataset": '"."'}, "no metadata.json", id="folder-that-is-no-dataset"),
    pytest.param({"agents": '["dqn"]'}, "dqn is an online agent", id="online-agent-offline"),
    pytest.param({"agents": '["nope"]'}, "unknown agent 'nope'", id="unknown-agent"),
    pytest.param({"agents": "[]"}, "agents must be a non-empty list", id="no-agents"),
    pytest.param({"agents": '["bc", "bc"]'}, "lists a name twice", id="agent-twice"),
    pytest.param({"gradient_steps": "0"}, "gradient_steps must be a positive integer", id="zero-steps"),
    pytest.param({"gradient_steps": '"many"'}, "gradient_steps must be a positive integer", id="text-steps"),
    pytest.param({"gradient_steps": "100000000000"}, "over the limit", id="too-many-steps"),
    pytest.param({"seeds": "-1"}, "seeds must be a positive integer", id="negative-seeds"),
    pytest.param({"steps": "5"}, "unknown key 'steps'", id="unknown-key"),
    pytest.param({"eval_kwargs": "{ bogus = 1 }"}, "bogus", id="unknown-eval-kwarg"),
    pytest.param({"name": f'"{EASY}"'}, "both named", id="name-taken-by-an-env"),
    pytest.param({"agents": "{ cql = { alpha = -1.0 } }"}, "alpha", id="bad-hyperparameter"),
    pytest.param({"agents": '{ cql = { dataset = "x" } }'}, "sets dataset", id="dataset-as-hyperparameter"),
]


@pytest.mark.parametrize(("fields", "names"), OFFLINE_ERRORS)
def test_a_bad_offline_entry_is_one_line_naming_the_entry(
    fields: dict[str, str], names: str, tiny: str, tmp_path: Path
) -> None:
    entry = {"dataset": f'"{TINY}"', "agents": '["bc", "cql"]', "gradient_steps": "30"} | fields
    text = SUITE[: SUITE.index("[[offline]]")] + "[[offline]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items())
    with pytest.raises(SuiteError) as raised:
        load_suite(str(write_suite(tmp_path / "s", text))).check()
    message = str(raised.value)
    assert "\n" not in message and names in message and "offline entry 1" in message


def test_an_offline_agent_among_the_online_agents_is_refused(tiny: str, tmp_path: Path) -> None:
    text = SUITE.replace("[agents.random]", "[agents.random]\n[agents.cql]")
    with pytest.raises(SuiteError, match=r"\[agents\.cql\]: cql is an offline agent.*\[\[offline\]\] entry"):
        load_suite(str(write_suite(tmp_path / "s", text))).check()


def test_a_bad_offline_entry_is_one_line_from_the_cli(tiny: str, tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "s", SUITE.replace('["bc", "cql"]', '["dqn"]'))
    assert main(["bench", "--suite", str(suite), "--db", str(tmp_path / "r.sqlite")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "offline entry 1" in lines[0] and "dqn is an online agent" in lines[0]
    assert not (tmp_path / "r.sqlite").exists()
