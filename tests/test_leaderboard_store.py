"""The results store: no cell vanishes, schema v2 and its migration, reads change nothing, busy writes."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

from nlp_envs import cli
from nlp_envs.evaluation import normalized_score
from nlp_envs.leaderboard import ResultStore, ResultStoreError, load_suite, run_cells
from nlp_envs.leaderboard import runner as runner_module
from nlp_envs.leaderboard.store import (
    SCHEMA_VERSION,
    CellResult,
    InvalidResultError,
    StoreWriteError,
    describe_sqlite_error,
)
from tests.test_leaderboard import TINY_SUITE, result

BANDIT_SUITE = """
name = "bandit"
seeds = 8
steps = 64
num_envs = 4
eval_episodes = 1
curve_points = 1
curve_episodes = 1

[[envs]]
id = "nlp_envs/SentimentBandit-v0"
kwargs = { split = "train" }
eval_kwargs = { split = "test" }

[agents.random]
"""

# The schema-1 statements exactly as nlp-envs wrote them before env_name and notes.
V1_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
V1_CELLS = """
CREATE TABLE IF NOT EXISTS cells (
    suite TEXT NOT NULL,
    agent TEXT NOT NULL,
    env_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    returns TEXT NOT NULL,
    mean_return REAL NOT NULL,
    normalized_score REAL NOT NULL,
    random_return REAL NOT NULL,
    oracle_return REAL NOT NULL,
    metrics TEXT NOT NULL,
    learning_curve TEXT NOT NULL,
    train_steps INTEGER NOT NULL,
    steps_per_second REAL NOT NULL,
    wall_time REAL NOT NULL,
    device TEXT NOT NULL,
    versions TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (suite, agent, env_id, seed, config_hash)
)
"""


def make_v1(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(V1_META)
        connection.execute(V1_CELLS)
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        connection.execute(
            "INSERT INTO cells (suite, agent, env_id, seed, config_hash, config, returns, mean_return, "
            "normalized_score, random_return, oracle_return, metrics, learning_curve, train_steps, "
            "steps_per_second, wall_time, device, versions, git_commit) VALUES "
            "('s', 'a', 'e', 0, 'h', '{}', '[1.0]', 1.0, 0.5, 0.0, 2.0, '{}', '[]', 1, 1.0, 1.0, 'cpu', '{}', 'x')"
        )
    connection.close()


def test_normalized_score_is_nan_exactly_where_undefined() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalized_score(0.5, 0.0, 1.0) == 0.5
        assert normalized_score(-1.0, -1.0, -1.0) != normalized_score(-1.0, -1.0, -1.0)  # nan
        for figures in [(1.0, 1.0, 1.0), (float("inf"), 0.0, 1.0), (0.5, float("nan"), 1.0), (1e308, -1e308, 1e-300)]:
            score = normalized_score(*figures)
            assert score != score, figures


def test_an_eight_seed_bandit_suite_stores_eight_cells_and_a_rerun_redoes_nothing(tmp_path: Path) -> None:
    suite = tmp_path / "bandit.toml"
    suite.write_text(BANDIT_SUITE, encoding="utf-8")
    cells = load_suite(str(suite)).cells()
    with ResultStore(tmp_path / "b.sqlite") as store:
        first = run_cells(cells, store)
        stored = store.results()
        again = run_cells(iter(cells), store)
    assert len(first.finished) + len(first.failed) == 8 and not first.failed
    assert len(stored) == 8
    # One evaluation episode: the random and oracle references can coincide; then the score is undefined.
    undefined = [cell for cell in stored if cell.normalized_score != cell.normalized_score]
    assert all(cell.oracle_return == cell.random_return for cell in undefined)
    assert again.already_done == 8 and not again.finished and not again.failed


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"mean_return": float("nan")}, "mean_return"),
        ({"returns": [1.0, float("inf")]}, r"returns\[1\]"),
        ({"returns": []}, "returns"),
        ({"metrics": {"success": float("nan")}}, "metrics"),
        ({"learning_curve": [[10.0, float("-inf")]]}, r"learning_curve\[0\]\[1\]"),
        ({"steps_per_second": float("inf")}, "steps_per_second"),
        ({"normalized_score": float("inf")}, "normalized_score"),
        ({"normalized_score": float("nan")}, "oracle and random returns differ"),
        ({"random_return": float("nan")}, "random_return"),
        ({"notes": ["ok", 3]}, "notes"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_store_refuses_a_row_the_tables_cannot_show(tmp_path: Path, changes: dict, named: str) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(InvalidResultError, match=named):
            store.add(result(**changes))
        assert store.results() == []


def test_an_undefined_score_is_stored_as_null_and_read_back_as_nan(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.add(result(normalized_score=float("nan"), random_return=1.0, oracle_return=1.0))
        (read,) = store.results()
    assert read.normalized_score != read.normalized_score
    with sqlite3.connect(tmp_path / "r.sqlite") as connection:
        assert connection.execute("SELECT normalized_score FROM cells").fetchone() == (None,)
    connection.close()


def fake_run_cell(**changes: object):  # a stand-in for runner.run_cell
    def run(cell, on_steps=None, tensorboard=None):
        fields = {
            "suite": cell.suite,
            "agent": cell.agent,
            "env_id": cell.env.id,
            "seed": cell.seed,
            "config_hash": runner_module.cell_key(cell)[4],
        }
        return result(**(fields | changes))

    return run


def test_a_non_finite_figure_fails_the_cell_by_name(tiny_cells: list, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner_module, "run_cell", fake_run_cell(learning_curve=[[1.0, float("nan")]]))
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_cells(tiny_cells, store)
        assert store.results() == []
    assert len(summary.failed) == len(tiny_cells) and not summary.finished
    assert all("learning_curve[0][1] is nan" in reason for _, reason in summary.failed)


def test_a_key_that_exists_already_is_reported_not_ignored(tiny_cells: list, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner_module, "run_cell", fake_run_cell())
    with ResultStore(tmp_path / "r.sqlite") as store:
        cell = tiny_cells[0]
        store.add(fake_run_cell(mean_return=5.0)(cell))
        monkeypatch.setattr(store, "finished_keys", lambda suite=None: set())  # another run wrote it meanwhile
        summary = run_cells([cell], store, stream=(log := _Log()))
        assert [row.mean_return for row in store.results()] == [5.0]
    assert len(summary.duplicates) == 1 and not summary.finished
    assert "written by another run" in log.text


class _Log:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture
def tiny_cells(tmp_path: Path) -> list:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE, encoding="utf-8")
    return load_suite(str(path)).cells()


def test_two_variants_of_one_env_id_are_two_cells(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.add(result(env_name="e (lm reward)"))
        assert store.add(result(env_name="e (reference reward)"))
        assert not store.add(result(env_name="e (lm reward)"))
        assert sorted(row.env_name for row in store.results(latest_only=True)) == [
            "e (lm reward)",
            "e (reference reward)",
        ]
    assert result().env_name == "e"  # no name: the id


def test_a_v1_database_is_read_as_it_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    make_v1(db)
    before = db.read_bytes()
    with ResultStore(db, readonly=True) as store:
        (old,) = store.results()
        assert store.finished_keys() == {("s", "a", "e", 0, "h")}
    assert db.read_bytes() == before
    assert (old.env_name, old.notes, old.normalized_score) == ("e", [], 0.5)
    with ResultStore(db) as store:
        assert store.results() == [old]
        assert store.add(result(env_name="e variant", notes=["agent ignores action masks"]))
        assert store.add(result(seed=1, normalized_score=float("nan"), random_return=2.0))
        assert not store.add(result())
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        columns = {row[1]: row for row in connection.execute("PRAGMA table_info(cells)")}
        assert columns["normalized_score"][3] == 0  # nullable
    connection.close()
    with ResultStore(db, readonly=True) as store:
        rows = {(row.env_name, row.seed): row for row in store.results()}
    assert rows[("e variant", 0)].notes == ["agent ignores action masks"] and len(rows) == 3


def test_reading_changes_nothing_and_foreign_files_are_refused_unchanged(tmp_path: Path, capsys) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
        connection.execute("INSERT INTO people VALUES ('ada')")
    connection.close()
    before = foreign.read_bytes()
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE, encoding="utf-8")
    for argv in (["leaderboard", "--db", str(foreign)], ["bench", "--suite", str(suite), "--db", str(foreign)]):
        assert cli.main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert "something else" in error and str(foreign) in error and len(error.splitlines()) == 1, error
        assert foreign.read_bytes() == before
        assert sorted(path.name for path in tmp_path.iterdir()) == ["foreign.sqlite", "tiny.toml"]
    with sqlite3.connect(foreign) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    connection.close()


def test_database_errors_name_the_cause_and_fitting_advice(tmp_path: Path) -> None:
    with pytest.raises(ResultStoreError, match="is a folder"):
        ResultStore(tmp_path)
    with pytest.raises(ResultStoreError, match="is a folder"):
        ResultStore(tmp_path, readonly=True)
    with pytest.raises(ResultStoreError, match="no results database"):
        ResultStore(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()
    db = tmp_path / "r.sqlite"
    ResultStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ResultStoreError, match="is locked by another process") as locked:
            ResultStore(db, timeout=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "move the file away" not in str(locked.value)
    reader = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as readonly:
            reader.execute("INSERT INTO meta VALUES ('x', 'y')")
    finally:
        reader.close()
    message = describe_sqlite_error(db, readonly.value)
    assert "read-only" in message and "move the file away" not in message
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"not a database" * 200)
    with pytest.raises(ResultStoreError, match="not a readable SQLite database"):
        ResultStore(corrupt, readonly=True)


def hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Another connection that holds the write lock of ``db`` for ``seconds``."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_busy_database_is_retried_with_back_off(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db, timeout=0.1, patience=30.0) as store:
        thread = hold_write_lock(db, 1.0)  # ten times the timeout of one try
        began = time.monotonic()
        assert store.add(result())
        assert time.monotonic() - began >= 0.9
        thread.join()
        assert len(store.results()) == 1


def test_a_result_that_cannot_be_written_waits_in_the_journal_for_the_next_run(
    tiny_cells: list, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(runner_module, "run_cell", fake_run_cell())
    db = tmp_path / "r.sqlite"
    cells = tiny_cells[:2]
    with ResultStore(db, timeout=0.05, patience=0.3) as store:
        thread = hold_write_lock(db, 3.0)
        try:
            summary = run_cells(cells, store, stream=_Log())
        finally:
            thread.join()
        assert len(summary.kept) == 2 and not summary.finished and not summary.failed
        assert "is locked" in summary.kept[0][1] and str(store.journal_path) in summary.kept[0][1]
        journal = store.journal_path
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 2
    with ResultStore(db) as store:
        resumed = run_cells(cells, store, stream=_Log())
        assert resumed.replayed == 2 and resumed.already_done == 2 and not resumed.finished
        assert not journal.exists() and len(store.results()) == 2
        # Replaying again (a crash between writing and removing the journal) writes nothing twice.
        journal.write_text("\n".join(json.dumps(_as_record(row)) for row in store.results()) + "\n")
        assert store.replay() == (0, [])
        assert not journal.exists() and len(store.results()) == 2


def _as_record(row: CellResult) -> dict:
    from dataclasses import asdict

    return asdict(row)


def test_a_write_that_stays_busy_is_a_named_error(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db, timeout=0.05, patience=0.2) as store:
        thread = hold_write_lock(db, 1.0)
        try:
            with pytest.raises(StoreWriteError, match="is locked by another process"):
                store.add(result())
        finally:
            thread.join()


def test_a_replay_keeps_what_it_cannot_write_and_names_it(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db, timeout=0.05, patience=0.2) as store:
        for seed in range(3):
            store.keep(result(seed=seed))
        thread = hold_write_lock(db, 1.5)
        try:
            assert store.replay() == (0, [f"3 results stay in {store.journal_path}: " + _locked_message(db)])
        finally:
            thread.join()
        lines = store.journal_path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3
        store.journal_path.write_text("\n".join([*lines, lines[0][:40]]) + "\n", encoding="utf-8")  # a torn line
        written, problems = store.replay()
        assert written == 3 and len(problems) == 1 and "line 4 stays there" in problems[0]
        assert store.journal_path.read_text(encoding="utf-8") == lines[0][:40] + "\n"


def _locked_message(db: Path) -> str:
    return describe_sqlite_error(db, sqlite3.OperationalError("database is locked"))


def test_a_result_goes_to_the_fallback_journal_when_the_one_beside_the_database_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.journal_path.mkdir()  # a folder where the journal should be: it cannot be appended to
        assert store.keep(result()) == store.fallback_journal_path
        assert store.fallback_journal_path.parent == tmp_path / "tmp"
    with ResultStore(db) as store:
        written, problems = store.replay()
        assert written == 1 and len(problems) == 1 and "cannot be read" in problems[0]
        assert not store.fallback_journal_path.exists() and len(store.results()) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads and writes any file")
def test_a_read_only_or_unreadable_file_is_named_before_any_cell_runs(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.add(result())
    db.chmod(0o444)
    with pytest.raises(ResultStoreError, match="is read-only") as read_only:
        ResultStore(db)
    assert "move the file away" not in str(read_only.value)
    with ResultStore(db, readonly=True) as store:
        assert len(store.results()) == 1
    db.chmod(0o000)
    for readonly in (True, False):
        with pytest.raises(ResultStoreError, match="cannot be read"):
            ResultStore(db, readonly=readonly)
