"""Cells that ran under another version of nlp-envs or of their agent's plugin are named, never mixed in silently."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from nlp_envs.cli import main
from nlp_envs.leaderboard.report import mixed_versions_note
from nlp_envs.leaderboard.runner import environment_versions
from nlp_envs.leaderboard.store import ResultStore, ResultStoreError
from tests.test_cli_errors import suite_text
from tests.test_leaderboard import result


def test_an_agent_whose_cells_ran_under_two_versions_is_flagged_in_every_format(tmp_path: Path, capsys) -> None:
    db = tmp_path / "mixed.sqlite"
    with ResultStore(db) as store:
        for seed in range(2):
            store.add(result(agent="dqn", seed=seed, versions={"nlp-envs": "0.1.0"}))
            store.add(result(agent="qtable", seed=seed, versions={"nlp-envs": "0.2.0"}))
        store.add(result(agent="dqn", seed=2, versions={"nlp-envs": "0.2.0"}))
    note = mixed_versions_note({"0.1.0", "0.2.0"})
    assert note.startswith("cells from nlp-envs 0.1.0, 0.2.0: the package changed between runs")
    for output in ("table", "markdown", "json", "html"):
        assert main(["leaderboard", "--db", str(db), "--format", output]) == 0
        assert note in capsys.readouterr().out, output
    assert main(["leaderboard", "--db", str(db), "--format", "table"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("qtable")]
    assert rows and all(note not in row for row in rows)  # each of qtable's cells ran under one version


def test_bench_names_skipped_cells_that_ran_under_another_version(tmp_path: Path, capsys) -> None:
    suite, db = tmp_path / "versions.toml", tmp_path / "versions.sqlite"
    suite.write_text(suite_text())
    assert main(["bench", "--suite", str(suite), "--db", str(db), "--seeds", "2"]) == 0
    capsys.readouterr()
    assert main(["bench", "--suite", str(suite), "--db", str(db), "--seeds", "2"]) == 0
    assert "other versions" not in capsys.readouterr().err  # same versions: nothing to say
    with sqlite3.connect(db) as connection:
        connection.execute("""UPDATE cells SET versions = json_set(versions, '$."nlp-envs"', '0.0.1') WHERE seed = 0""")
    assert main(["bench", "--suite", str(suite), "--db", str(db), "--seeds", "2"]) == 0
    here = environment_versions()["nlp-envs"]
    assert (
        f"note: 1 of the skipped cells ran under other versions: nlp-envs 0.0.1 (this run: {here}). Their results "
        "stand as they ran; to run every cell under this version, give another --db."
    ) in capsys.readouterr().err


def test_a_damaged_versions_column_is_named_before_a_run(tmp_path: Path) -> None:
    db = tmp_path / "damaged.sqlite"
    with ResultStore(db) as store:
        store.add(result(versions={"nlp-envs": "0.2.0"}))
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE cells SET versions = ?", (json.dumps(["0.2.0"]),))
    with (
        ResultStore(db) as store,
        pytest.raises(ResultStoreError, match="its versions is \\['0.2.0'\\], not a JSON dict"),
    ):
        store.finished_cells()
