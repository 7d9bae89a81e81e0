"""Leaderboard results in SQLite: one row per finished cell, written in one transaction.

The database runs in WAL mode, so a run killed at any moment (even by SIGKILL) loses at most the
cells it had in flight, and several runs may write to one file at once (each write waits up to a
minute for the lock). A cell is identified by (suite, agent, env id, seed, config hash); writing a
cell that exists already is a no-op, so re-running a suite skips what is done.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_DB = Path("results") / "leaderboard.sqlite"

_CREATE_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_CREATE_CELLS = """
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

_JSON_FIELDS = ("config", "returns", "metrics", "learning_curve", "versions")
# CellResult fields without a column yet (the report reads them; the store keeps their defaults).
_NOT_STORED = ("env_name", "notes")


class ResultStoreError(RuntimeError):
    """A results database that cannot be used as it is: corrupt, foreign or from a newer schema."""


@dataclass(frozen=True)
class CellResult:
    """Everything recorded for one finished (agent, env, seed) cell of a suite."""

    suite: str
    agent: str
    env_id: str
    seed: int
    config_hash: str
    config: dict[str, Any]
    returns: list[float]
    mean_return: float
    normalized_score: float
    random_return: float
    oracle_return: float
    metrics: dict[str, float]
    learning_curve: list[list[float]]
    train_steps: int
    steps_per_second: float
    wall_time: float
    device: str
    versions: dict[str, str]
    git_commit: str
    finished_at: str = field(default="")
    env_name: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        """The cell's identity in the database."""
        return (self.suite, self.agent, self.env_id, self.seed, self.config_hash)


class ResultStore:
    """A leaderboard database file (created if missing; never silently overwritten)."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise ResultStoreError(
                f"{self.path} is not a readable nlp-envs results database ({error}); "
                "move the file away or pass another --db path."
            ) from None

    def _open(self) -> None:
        connection = self._connection
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=60000")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise ResultStoreError(
                f"{self.path} is an SQLite database of something else (tables {sorted(tables)}); "
                "pass another --db path."
            )
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(_CREATE_META)
            connection.execute(_CREATE_CELLS)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        version = int(row[0]) if row is not None else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise ResultStoreError(
                f"{self.path} was written by a newer nlp-envs (schema {version}; this version reads up to "
                f"{SCHEMA_VERSION}); upgrade nlp-envs or pass another --db path."
            )

    def finished_keys(self, suite: str | None = None) -> set[tuple[str, str, str, int, str]]:
        """The keys of the finished cells (of one suite, or all)."""
        query = "SELECT suite, agent, env_id, seed, config_hash FROM cells"
        rows = self._connection.execute(query + (" WHERE suite = ?" if suite else ""), (suite,) if suite else ())
        return {(row[0], row[1], row[2], int(row[3]), row[4]) for row in rows}

    def add(self, result: CellResult) -> bool:
        """Write one finished cell in one transaction; False if that cell was already there."""
        record = asdict(result)
        record.pop("finished_at")
        for name in _NOT_STORED:
            record.pop(name)
        for name in _JSON_FIELDS:
            record[name] = json.dumps(record[name], sort_keys=True)
        columns = ", ".join(record)
        placeholders = ", ".join("?" for _ in record)
        cursor = self._connection.execute(
            f"INSERT OR IGNORE INTO cells ({columns}) VALUES ({placeholders})", tuple(record.values())
        )
        return cursor.rowcount == 1

    def results(self, suite: str | None = None, *, latest_only: bool = False) -> list[CellResult]:
        """Finished cells (of one suite), ordered by suite, env, agent and seed.

        Args:
            suite: only this suite's cells.
            latest_only: of the cells that differ only in their config (a suite file that was
                edited), keep the one written last, so that a leaderboard shows the suite as it is.
        """
        names = [item.name for item in fields(CellResult) if item.name not in _NOT_STORED]
        query = f"SELECT {', '.join(names)} FROM cells"
        query += " WHERE suite = ?" if suite else ""
        query += " ORDER BY suite, env_id, agent, seed, finished_at, rowid"
        latest: dict[tuple[str, str, str, int, str], CellResult] = {}
        results = []
        for row in self._connection.execute(query, (suite,) if suite else ()):
            record = dict(zip(names, row, strict=True))
            for name in _JSON_FIELDS:
                record[name] = json.loads(record[name])
            result = CellResult(**record)
            results.append(result)
            # Variants of one env id (named in the suite, recorded in the config) are distinct rows.
            latest[result.key[:4] + (result.env_name or str(result.config.get("env_name", "")),)] = result
        return list(latest.values()) if latest_only else results

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
