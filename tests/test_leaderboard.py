"""Leaderboard runs: suites, the SQLite store, kill-and-resume, executors and reports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nlp_envs.leaderboard import (
    CellResult,
    ResultStore,
    ResultStoreError,
    SuiteError,
    build,
    load_suite,
    render,
    run_cell,
    run_cells,
)
from nlp_envs.leaderboard.suites import PACKAGE_SUITES

TINY_SUITE = """
name = "tiny"
seeds = 2
steps = 400
num_envs = 4
eval_episodes = 20
curve_points = 2
curve_episodes = 5

[[envs]]
id = "nlp_envs/NextWordEasy-v0"
kwargs = { split = "train" }
eval_kwargs = { split = "test" }

[agents.random]

[agents.qtable]
"""


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE, encoding="utf-8")
    return path


def result(**changes: object) -> CellResult:
    fields: dict = {
        "suite": "s",
        "agent": "a",
        "env_id": "e",
        "seed": 0,
        "config_hash": "h",
        "config": {},
        "returns": [1.0],
        "mean_return": 1.0,
        "normalized_score": 0.5,
        "random_return": 0.0,
        "oracle_return": 2.0,
        "metrics": {},
        "learning_curve": [],
        "train_steps": 1,
        "steps_per_second": 1.0,
        "wall_time": 1.0,
        "device": "cpu",
        "versions": {},
        "git_commit": "x",
    }
    fields.update(changes)
    return CellResult(**fields)


def test_shipped_suites_parse_and_cover_their_envs() -> None:
    shipped = {path.stem for path in PACKAGE_SUITES.glob("*.toml")}
    assert {"smoke", "default", "full"} <= shipped
    for name in shipped:
        suite = load_suite(name)
        assert suite.envs and suite.agents
        offline = sum(len(entry.agents) * (entry.seeds or suite.seeds) for entry in suite.offline)
        assert len(suite.cells()) == len(suite.envs) * len(suite.agents) * suite.seeds + offline


def test_suite_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no suite named 'nope'"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('seeds = 0\n[[envs]]\nid = "x"\n[agents.random]\n', encoding="utf-8")
    with pytest.raises(SuiteError, match="seeds must be a positive integer"):
        load_suite(str(bad))
    bad.write_text('[[envs]]\nid = "x"\ncolour = 1\n[agents.random]\n', encoding="utf-8")
    with pytest.raises(SuiteError, match="unknown key 'colour'"):
        load_suite(str(bad))


def test_store_writes_each_cell_once_and_reads_it_back(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.add(result(metrics={"success": 0.5}, learning_curve=[[10.0, 1.0]]))
        assert not store.add(result(mean_return=99.0))
        (read,) = store.results()
    assert read.mean_return == 1.0 and read.metrics == {"success": 0.5} and read.learning_curve == [[10.0, 1.0]]
    assert read.finished_at


def test_leaderboard_reads_the_latest_config_of_each_cell(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.add(result(config_hash="old", mean_return=1.0))
        store.add(result(config_hash="new", mean_return=2.0))
        store.add(result(seed=1, config_hash="old", mean_return=3.0))
        assert len(store.results()) == 3
        latest = store.results(latest_only=True)
    assert sorted((cell.seed, cell.mean_return) for cell in latest) == [(0, 2.0), (1, 3.0)]


def test_store_refuses_corrupt_foreign_and_newer_files(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"not a database" * 200)
    with pytest.raises(ResultStoreError, match="not a readable"):
        ResultStore(corrupt)
    assert corrupt.read_bytes() == b"not a database" * 200
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(ResultStoreError, match="something else"):
        ResultStore(foreign)
    newer = tmp_path / "newer.sqlite"
    ResultStore(newer).close()
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ResultStoreError, match="newer nlp-envs"):
        ResultStore(newer)


def _write_cells(db: str, start: int) -> None:
    with ResultStore(db) as store:
        for seed in range(start, start + 25):
            store.add(result(seed=seed))


def test_several_processes_can_write_one_database(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.sqlite")
    ResultStore(db).close()
    code = "import sys; from tests.test_leaderboard import _write_cells; _write_cells(sys.argv[1], int(sys.argv[2]))"
    root = Path(__file__).resolve().parents[1]
    writers = [subprocess.Popen([sys.executable, "-c", code, db, str(start)], cwd=root) for start in (0, 25, 50)]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    with ResultStore(db) as store:
        assert sorted(cell.seed for cell in store.results()) == list(range(75))


def test_a_cell_is_reproducible_and_records_everything(tiny_suite: Path) -> None:
    cell = next(cell for cell in load_suite(str(tiny_suite)).cells() if cell.agent == "qtable")
    first, second = run_cell(cell), run_cell(cell)
    assert first.returns == second.returns
    assert len(first.returns) == 20 and len(first.learning_curve) == 2
    assert first.learning_curve[-1][0] == first.train_steps >= 400
    assert first.normalized_score == pytest.approx(
        (first.mean_return - first.random_return) / (first.oracle_return - first.random_return)
    )
    assert {"python", "nlp-envs", "torch", "gymnasium", "stable-baselines3"} <= set(first.versions)
    assert set(first.metrics) == {"words", "reference_matches", "mean_log_prob"}
    assert first.device == "cpu" and first.steps_per_second > 0


def test_rerunning_skips_finished_cells(tiny_suite: Path, tmp_path: Path) -> None:
    cells = load_suite(str(tiny_suite)).cells()
    with ResultStore(tmp_path / "r.sqlite") as store:
        first = run_cells(cells, store)
        again = run_cells(cells, store)
        assert len(first.finished) == 4 and not first.failed
        assert again.already_done == 4 and not again.finished
        assert len(store.results()) == 4


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers(tiny_suite: Path, tmp_path: Path) -> None:
    cells = load_suite(str(tiny_suite)).cells(agents=["qtable"])
    with ResultStore(tmp_path / "one.sqlite") as one, ResultStore(tmp_path / "two.sqlite") as two:
        run_cells(cells, one)
        run_cells(cells, two, jobs=2)
        assert [r.returns for r in one.results()] == [r.returns for r in two.results()]


@pytest.mark.slow
def test_ray_executor_gives_the_same_numbers(tiny_suite: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    cells = load_suite(str(tiny_suite)).cells(agents=["qtable"], seeds=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with ResultStore(tmp_path / "local.sqlite") as local, ResultStore(tmp_path / "ray.sqlite") as remote:
            run_cells(cells, local)
            summary = run_cells(cells, remote, executor="ray")
            assert not summary.failed, summary.failed
            assert [r.returns for r in local.results()] == [r.returns for r in remote.results()]
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_sigkill_mid_run_loses_only_cells_in_flight(tmp_path: Path) -> None:
    suite = tmp_path / "kill.toml"
    suite.write_text(
        TINY_SUITE.replace('name = "tiny"', 'name = "kill"')
        .replace("seeds = 2", "seeds = 6")
        .replace("steps = 400", "steps = 3000")
    )
    db = tmp_path / "kill.sqlite"
    command = [sys.executable, "-m", "nlp_envs.cli", "bench", "--suite", str(suite), "--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.exists():
                with sqlite3.connect(db) as connection:
                    try:
                        if connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0] >= 2:
                            break
                    except sqlite3.OperationalError:
                        pass
            time.sleep(0.05)
        else:
            pytest.fail("no cell finished within 120 s")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ResultStore(db) as store:
        survivors = len(store.results())
    assert 2 <= survivors < 12
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{survivors} of 12 cells are already" in resumed.stderr
    with ResultStore(db) as store:
        keys = [(cell.agent, cell.seed) for cell in store.results()]
    assert len(keys) == len(set(keys)) == 12


@pytest.fixture(scope="module")
def board_results(tmp_path_factory: pytest.TempPathFactory) -> list[CellResult]:
    path = tmp_path_factory.mktemp("suite") / "tiny.toml"
    path.write_text(TINY_SUITE, encoding="utf-8")
    with ResultStore(tmp_path_factory.mktemp("db") / "r.sqlite") as store:
        run_cells(load_suite(str(path)).cells(), store)
        return store.results()


def test_text_and_markdown_reports_have_every_agent_and_env(board_results: list[CellResult]) -> None:
    board = build(board_results, rng=np.random.default_rng(0), repetitions=200)
    for fmt in ("table", "markdown"):
        text = render(board, fmt)
        assert "IQM [95% CI]" in text and "Probability of improvement" in text
        assert "nlp_envs/NextWordEasy-v0" in text and "qtable" in text and "random" in text
        assert "oracle (ref.)" in text
    assert render(board, "markdown").count("|---|") >= 3


def test_one_seed_gives_no_interval_rather_than_a_point() -> None:
    cells = [result(env_id=env, normalized_score=score) for env, score in (("e1", 0.2), ("e2", 0.6))]
    single = render(build(cells, rng=np.random.default_rng(0), repetitions=50), "table")
    assert single.count("[1 seed: no CI]") == 3
    cells += [result(env_id=env, seed=1, normalized_score=score) for env, score in (("e1", 0.4), ("e2", 0.7))]
    double = render(build(cells, rng=np.random.default_rng(0), repetitions=50), "table")
    assert "no CI" not in double and "0.475 [0.400, 0.550]" in double


def test_json_report_follows_the_model_index_shape(board_results: list[CellResult]) -> None:
    index = json.loads(render(build(board_results, rng=np.random.default_rng(0), repetitions=50), "json"))
    assert {entry["name"] for entry in index} == {"random", "qtable"}
    for entry in index:
        (item,) = entry["results"]
        assert item["task"]["type"] == "reinforcement-learning"
        assert item["dataset"]["name"] == "nlp_envs/NextWordEasy-v0"
        assert {"mean_reward", "normalized_score"} <= {metric["type"] for metric in item["metrics"]}


def test_html_report_is_self_contained_and_renders_in_chromium(board_results: list[CellResult], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    page = render(build(board_results, rng=np.random.default_rng(0), repetitions=50), "html")
    assert page.count("<img") >= 3 and "data:image/png;base64," in page
    assert "src='http" not in page and 'href="http' not in page
    path = tmp_path / "leaderboard.html"
    path.write_text(page, encoding="utf-8")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    screenshot = tmp_path / "leaderboard.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,1600",
            path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = screenshot.read_bytes()
    assert image.startswith(b"\x89PNG") and len(image) > 20_000
