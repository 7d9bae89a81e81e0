"""Leaderboard results in SQLite: one row per finished cell, written in one transaction.

The database runs in WAL mode, so a run killed at any moment (even by SIGKILL) loses at most the
cells it had in flight, and several runs may write to one file at once. A write that finds the
database busy waits (``timeout`` per try), then tries again with growing pauses for up to
``patience`` seconds before it gives up with :class:`StoreWriteError`; the runner then keeps the
result in the journal ``<db>.pending.jsonl`` (or, when that disk is full, in a journal named after
the database in the temporary folder; see :meth:`ResultStore.keep`) and writes it into the
database at the start of the next run (:meth:`ResultStore.replay`).

Reading never changes a file: ``ResultStore(path, readonly=True)`` opens it with SQLite's
``mode=ro``, checks that it is ours before anything else and never touches its journal mode (on
our own WAL database SQLite may leave its empty ``-wal``/``-shm`` companions beside it). A
writing store changes only a new or empty file or a database that is ours, and checks that before
it writes. A file that cannot be used (a folder, not SQLite, another program's database, newer
schema, read-only, locked, unreadable) is refused with one line that names the cause.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)   -- ('schema_version', '2')
    cells(
        suite, agent, env_id TEXT NOT NULL,
        env_name TEXT NOT NULL,         -- the row label of the env variant in its suite (default: env_id)
        seed INTEGER NOT NULL,
        config_hash, config TEXT NOT NULL,
        returns TEXT NOT NULL,          -- JSON list, one return per evaluation episode
        mean_return REAL NOT NULL,
        normalized_score REAL,          -- NULL: undefined (oracle_return == random_return)
        random_return, oracle_return REAL NOT NULL,
        metrics, learning_curve TEXT NOT NULL,   -- JSON: {name: mean}, [[steps, mean return], ...]
        train_steps INTEGER NOT NULL, steps_per_second, wall_time REAL NOT NULL,
        device, versions, git_commit TEXT NOT NULL,
        notes TEXT NOT NULL,            -- JSON list of strings shown next to the cell's score
        finished_at TEXT NOT NULL,      -- UTC, ISO 8601
        PRIMARY KEY (suite, agent, env_name, seed, config_hash))

An offline cell (trained from a logged dataset) keeps its dataset in ``config["dataset"]``: the
Minari id, the sha256 of its files and its behaviour policy's reference figures (see
:class:`nlp_envs.leaderboard.suites.DatasetRef`); being part of the hashed config, a changed
dataset gives a new ``config_hash``, so no column or migration is needed.

Version 1 had no ``env_name`` (its key used ``env_id``) and no ``notes``, and ``normalized_score``
was ``NOT NULL``; a writing store migrates a version-1 file in one transaction (``env_name`` =
``env_id``, no notes), a reading store reads it as it is. Every figure in a row is finite
(:func:`check_result`), so every row can be shown; writing a cell whose key exists already writes
nothing and returns ``False``, so re-running a suite skips what is done. Reading checks each row the
same way: a row that was edited by hand or corrupted (a JSON column that does not decode or is not of
its type, a figure no written cell holds) is refused with one line naming the file, the row and the
field, never shown as if it were a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, BinaryIO

from nlp_envs.atomic import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs sharing a journal are not locked against each other
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 2
DEFAULT_DB = Path("results") / "leaderboard.sqlite"
JOURNAL_SUFFIX = ".pending.jsonl"

_CREATE_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_CREATE_CELLS = """
CREATE TABLE IF NOT EXISTS {name} (
    suite TEXT NOT NULL,
    agent TEXT NOT NULL,
    env_id TEXT NOT NULL,
    env_name TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    returns TEXT NOT NULL,
    mean_return REAL NOT NULL,
    normalized_score REAL,
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
    notes TEXT NOT NULL DEFAULT '[]',
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (suite, agent, env_name, seed, config_hash)
)
"""
# The columns a version-1 table has; the migration copies them and derives the rest.
_V1_COLUMNS = (
    "suite, agent, env_id, seed, config_hash, config, returns, mean_return, normalized_score, random_return, "
    "oracle_return, metrics, learning_curve, train_steps, steps_per_second, wall_time, device, versions, "
    "git_commit, finished_at"
)

_JSON_FIELDS = ("config", "returns", "metrics", "learning_curve", "versions", "notes")
_JSON_TYPES: dict[str, type] = {
    "config": dict,
    "returns": list,
    "metrics": dict,
    "learning_curve": list,
    "versions": dict,
    "notes": list,
}
"""The JSON type of each JSON column: a row whose column decodes to another type is damaged."""
_BUSY = ("database is locked", "database table is locked", "database is busy")


class ResultStoreError(RuntimeError):
    """A results database that cannot be used as it is: corrupt, foreign, newer, locked or read-only."""


class StoreWriteError(ResultStoreError):
    """A result could not be written (database locked for longer than the patience, disk full, ...)."""


class InvalidResultError(ValueError):
    """A cell result the tables cannot show (a non-finite figure, a wrong type); it is never stored."""


@dataclass(frozen=True)
class CellResult:
    """Everything recorded for one finished (agent, env, seed) cell of a suite.

    ``normalized_score`` is ``nan`` when it is undefined (the oracle and random references have
    the same mean return on the evaluation episodes); the database stores that as NULL.
    ``env_name`` is the row label of the env variant in its suite (``""`` means ``env_id``);
    ``notes`` are shown next to the cell's score (e.g. ``"agent ignores action masks"``).
    """

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
    env_name: str = field(default="")
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.env_name:
            object.__setattr__(self, "env_name", self.env_id)

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        """The cell's identity in the database: (suite, agent, env_name, seed, config_hash)."""
        return (self.suite, self.agent, self.env_name, self.seed, self.config_hash)

    @property
    def label(self) -> str:
        """``agent on env_name seed N`` (for messages)."""
        return f"{self.agent} on {self.env_name} seed {self.seed}"


def check_result(result: CellResult) -> None:
    """Refuse a result the tables cannot show.

    Raises:
        InvalidResultError: naming the cell and the first field that is not a finite number (or
            not of its type); ``normalized_score`` may be ``nan`` only where it is undefined,
            i.e. when ``oracle_return == random_return``.
    """

    def refuse(name: str, value: Any, expected: str) -> InvalidResultError:
        return InvalidResultError(f"cell {result.label}: {name} is {value!r}, expected {expected}; not stored.")

    def finite(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise refuse(name, value, "a finite number")

    for name in ("suite", "agent", "env_id", "env_name", "config_hash", "device", "git_commit"):
        if not isinstance(getattr(result, name), str) or not getattr(result, name):
            raise refuse(name, getattr(result, name), "a non-empty string")
    if isinstance(result.seed, bool) or not isinstance(result.seed, int):
        raise refuse("seed", result.seed, "an integer")
    if isinstance(result.train_steps, bool) or not isinstance(result.train_steps, int) or result.train_steps < 0:
        raise refuse("train_steps", result.train_steps, "a non-negative integer")
    if not isinstance(result.returns, list) or not result.returns:
        raise refuse("returns", result.returns, "a non-empty list of returns")
    for index, value in enumerate(result.returns):
        finite(f"returns[{index}]", value)
    for name in ("mean_return", "random_return", "oracle_return", "steps_per_second", "wall_time"):
        finite(name, getattr(result, name))
    for name, value in result.metrics.items():
        finite(f"metrics[{name!r}]", value)
    for index, point in enumerate(result.learning_curve):
        if not isinstance(point, list) or len(point) != 2:
            raise refuse(f"learning_curve[{index}]", point, "[steps, mean return]")
        finite(f"learning_curve[{index}][0]", point[0])
        finite(f"learning_curve[{index}][1]", point[1])
    score = result.normalized_score
    if isinstance(score, float) and math.isnan(score):
        if result.oracle_return != result.random_return:
            raise refuse("normalized_score", score, "a finite number (oracle and random returns differ)")
    else:
        finite("normalized_score", score)
    if not isinstance(result.notes, list) or not all(isinstance(note, str) for note in result.notes):
        raise refuse("notes", result.notes, "a list of strings")


def describe_sqlite_error(path: Path, error: sqlite3.Error) -> str:
    """One line naming what is wrong with the database file at ``path`` and what to do about it."""
    text = str(error)
    lowered = text.lower()
    if any(marker in lowered for marker in _BUSY):
        return f"{path} is locked by another process ({text}); wait for it to finish or pass another --db path."
    if "readonly" in lowered or "read-only" in lowered:
        return f"{path} is read-only ({text}); make it and its folder writable or pass another --db path."
    if "disk i/o error" in lowered:
        return (
            f"{path}: disk I/O error ({text}); check that its disk has free space and works, "
            "or pass a --db path on another disk."
        )
    if "full" in lowered:
        return f"{path}: the disk is full ({text}); free some space or pass a --db path on another disk."
    if "unable to open" in lowered:
        return (
            f"{path} cannot be opened ({text}); check that it and its folder exist and that you may read "
            "(and, for bench, write) them, or pass another --db path."
        )
    if "not a database" in lowered or "malformed" in lowered:
        return f"{path} is not a readable SQLite database ({text}); move the file away or pass another --db path."
    return f"{path} cannot be used as a results database ({text}); pass another --db path."


def _is_busy(error: sqlite3.Error) -> bool:
    return any(marker in str(error).lower() for marker in _BUSY)


class ResultStore:
    """A leaderboard database file.

    Args:
        path: the database file. A writing store creates it (and its folder) when missing.
        readonly: open for reading only; the file must exist, and nothing in it changes.
        timeout: seconds one try waits for a busy database.
        patience: seconds a write keeps retrying (with growing pauses) before
            :class:`StoreWriteError`.

    Raises:
        ResultStoreError: the file cannot be used; the message names the cause.
    """

    def __init__(
        self, path: str | Path = DEFAULT_DB, *, readonly: bool = False, timeout: float = 60.0, patience: float = 600.0
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.timeout, self.patience = timeout, patience
        self._columns: set[str] = set()
        if self.path.is_dir():
            raise ResultStoreError(
                f"{self.path} is a folder, not a results database; pass a file path such as "
                f"{self.path / DEFAULT_DB.name}."
            )
        if readonly and not self.path.exists():
            raise ResultStoreError(f"no results database at {self.path}; run `nlp-envs bench` first or pass --db.")
        if self.path.exists() and not os.access(self.path, os.R_OK):
            raise ResultStoreError(f"{self.path} cannot be read (permission denied); fix its permissions or pass --db.")
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            target = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
            self._connection = sqlite3.connect(
                target, timeout=timeout, isolation_level=None, uri=readonly, check_same_thread=False
            )
        except OSError as error:
            raise ResultStoreError(f"cannot create {self.path} ({error}); pass another --db path.") from None
        except sqlite3.Error as error:
            raise ResultStoreError(describe_sqlite_error(self.path, error)) from None
        try:
            self._open()
        except sqlite3.Error as error:
            self._connection.close()
            raise ResultStoreError(describe_sqlite_error(self.path, error)) from None
        except BaseException:
            self._connection.close()
            raise

    @property
    def journal_path(self) -> Path:
        """Where results that could not be written wait for the next run: ``<db>.pending.jsonl``."""
        return self.path.with_name(self.path.name + JOURNAL_SUFFIX)

    @property
    def fallback_journal_path(self) -> Path:
        """The journal used when the one beside the database cannot be written (its disk is full).

        It lies in the temporary folder, named after the database's absolute path, so that the
        next run on the same database finds it.
        """
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"nlp-envs-{digest}{JOURNAL_SUFFIX}"

    def _open(self) -> None:
        connection = self._connection
        # First make sure the file is ours (or new), reading only.
        version = self._schema_version()
        if version is not None and version > SCHEMA_VERSION:
            raise ResultStoreError(
                f"{self.path} was written by a newer nlp-envs (schema {version}; this version reads up to "
                f"{SCHEMA_VERSION}); upgrade nlp-envs or pass another --db path."
            )
        if self.readonly:
            self._columns = self._cell_columns()
            return
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = self._schema_version()  # again, under the write lock: another run may have made it
            if version is None:
                connection.execute(_CREATE_META)
                connection.execute(_CREATE_CELLS.format(name="cells"))
                connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif version == 1:
                self._migrate_from_v1()
            # A file we may not write opens all the same (read-only): find out now, before a
            # run trains cells it cannot record.
            connection.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        self._columns = self._cell_columns()

    def _schema_version(self) -> int | None:
        """The schema version of our database, None for an empty one; refuses anything else."""
        tables = {row[0] for row in self._connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        row = None
        if {"meta", "cells"} <= tables:
            row = self._connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise ResultStoreError(
                f"{self.path} is an SQLite database of something else (tables {sorted(tables)}), not nlp-envs "
                "results; it was left unchanged; pass another --db path."
            )
        return int(row[0])

    def _migrate_from_v1(self) -> None:
        connection = self._connection
        connection.execute(_CREATE_CELLS.format(name="cells_v2"))
        connection.execute(
            f"INSERT INTO cells_v2 ({_V1_COLUMNS}, env_name, notes) SELECT {_V1_COLUMNS}, env_id, '[]' FROM cells"
        )
        connection.execute("DROP TABLE cells")
        connection.execute("ALTER TABLE cells_v2 RENAME TO cells")
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _cell_columns(self) -> set[str]:
        """The columns of the cells table; refuses a table that lacks one that every schema version has."""
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(cells)")}
        missing = [name for name in _V1_COLUMNS.split(", ") if name not in columns]
        if columns and missing:
            raise ResultStoreError(
                f"{self.path} is damaged: its cells table has no column {missing[0]!r} (its columns: "
                f"{', '.join(sorted(columns))}); restore the file from a backup or pass another --db path."
            )
        return columns

    def _column(self, name: str) -> str:
        """A column of the cells table, or what stands for it in a version-1 table (read-only)."""
        if name in self._columns:
            return name
        return {"env_name": "env_id", "notes": "'[]'"}[name]

    def finished_keys(self, suite: str | None = None) -> set[tuple[str, str, str, int, str]]:
        """The keys (suite, agent, env_name, seed, config_hash) of the finished cells (of one suite, or all)."""
        return set(self.finished_cells(suite))

    def finished_cells(
        self, suite: str | None = None
    ) -> dict[tuple[str, str, str, int, str], tuple[str, dict[str, str]]]:
        """The env id and the versions of each finished cell (of one suite, or all), by key.

        What a runner reads before it starts. The key holds the env's row name, not its id: the runner
        compares the ids to catch a suite entry whose id changed under the same name, and the versions
        with its own to say which skipped cells ran under other code.
        """
        if not self._columns:
            return {}
        query = (
            f"SELECT suite, agent, {self._column('env_name')}, seed, config_hash, env_id, rowid, versions FROM cells"
        )
        rows = self._connection.execute(query + (" WHERE suite = ?" if suite else ""), (suite,) if suite else ())
        cells = {}
        for row in rows:
            cell = f"{row[1]!r} on {row[2]!r} seed {row[3]!r}"
            if not isinstance(row[3], int) or not all(isinstance(value, str) for value in row[:3] + row[4:6]):
                raise self._damaged(row[6], cell, f"its key is {row[:6]!r}")
            cells[(row[0], row[1], row[2], row[3], row[4])] = (row[5], self._json(row[6], cell, "versions", row[7]))
        return cells

    def _json(self, rowid: int, cell: str, name: str, text: Any) -> Any:
        """A JSON column's value, checked against its type in :data:`_JSON_TYPES`; else the row is damaged."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as error:
            raise self._damaged(rowid, cell, f"its {name} is not JSON ({error})") from None
        if not isinstance(value, _JSON_TYPES[name]):
            raise self._damaged(rowid, cell, f"its {name} is {value!r}, not a JSON {_JSON_TYPES[name].__name__}")
        return value

    def _damaged(self, rowid: int, cell: str, detail: str) -> ResultStoreError:
        """The error for a stored row that is not a cell this version wrote (edited by hand, or corrupted)."""
        return ResultStoreError(
            f"{self.path} is damaged: the row of cell {cell} (rowid {rowid}) cannot be read: {detail}; "
            f"delete that row (DELETE FROM cells WHERE rowid = {rowid}) or restore the file from a backup."
        )

    def _read_row(self, record: dict[str, Any], rowid: int) -> CellResult:
        """A stored row as a :class:`CellResult`, checked as a written one is (:func:`check_result`).

        Raises:
            ResultStoreError: a JSON column that does not decode or is not of its type, or a figure
                or field that no written cell can hold; the message names the row and the field.
        """
        cell = f"{record.get('agent')!r} on {record.get('env_name')!r} seed {record.get('seed')!r}"
        for name in _JSON_TYPES:
            record[name] = self._json(rowid, cell, name, record[name])
        if record["normalized_score"] is None:
            record["normalized_score"] = float("nan")
        if not isinstance(record["finished_at"], str):
            raise self._damaged(rowid, cell, f"its finished_at is {record['finished_at']!r}, not a time")
        result = CellResult(**record)
        try:
            check_result(result)
        except InvalidResultError as error:
            detail = str(error).removeprefix(f"cell {result.label}: ").removesuffix("; not stored.")
            raise self._damaged(rowid, cell, detail) from None
        return result

    def add(self, result: CellResult) -> bool:
        """Write one finished cell in one transaction.

        Returns:
            True when written; False when a cell with the same key is there already (nothing is
            written: the caller reports it).

        Raises:
            InvalidResultError: the result has a figure the tables cannot show (see
                :func:`check_result`).
            StoreWriteError: the database stayed busy for ``patience`` seconds, the disk is full,
                or the file is read-only; the message names the cause.
        """
        if self.readonly:
            raise StoreWriteError(f"{self.path} was opened for reading; open it with readonly=False to write.")
        check_result(result)
        record = asdict(result)
        record.pop("finished_at")
        if math.isnan(record["normalized_score"]):
            record["normalized_score"] = None  # NULL: undefined
        for name in _JSON_FIELDS:
            try:
                record[name] = json.dumps(record[name], sort_keys=True, allow_nan=False)
            except (TypeError, ValueError) as error:  # NaN, or a value JSON cannot hold: refused, never a crash
                raise InvalidResultError(
                    f"cell {result.label}: {name} cannot be stored as JSON ({error}); not stored."
                ) from None
        columns = ", ".join(record)
        placeholders = ", ".join("?" for _ in record)
        statement = f"INSERT INTO cells ({columns}) VALUES ({placeholders})"
        deadline = time.monotonic() + self.patience
        pause = 0.05
        while True:
            try:
                self._connection.execute(statement, tuple(record.values()))
            except sqlite3.IntegrityError as error:
                if "UNIQUE" in str(error):
                    return False
                raise InvalidResultError(f"cell {result.label}: {error}; not stored.") from None
            except sqlite3.Error as error:
                if _is_busy(error) and time.monotonic() + pause < deadline:
                    time.sleep(pause)
                    pause = min(pause * 2, 5.0)
                    continue
                raise StoreWriteError(describe_sqlite_error(self.path, error)) from None
            return True

    def keep(self, result: CellResult) -> Path:
        """Append a result that could not be written to a journal (flushed to disk) and say which.

        The journal is :attr:`journal_path`, or :attr:`fallback_journal_path` when that cannot be
        written.

        Raises:
            OSError: neither journal can be written (the error of the first).
        """
        line = (json.dumps(asdict(result), sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        first_error: OSError | None = None
        for path in (self.journal_path, self.fallback_journal_path):
            try:
                with self._locked_journal(path, "a") as handle:
                    descriptor = handle.fileno()
                    size = os.lseek(descriptor, 0, os.SEEK_END)
                    try:
                        written = 0
                        while written < len(line):  # unbuffered, so that a failure can be undone
                            written += os.write(descriptor, line[written:])
                        os.fsync(descriptor)
                    except OSError:
                        os.ftruncate(descriptor, size)  # no torn line stays behind
                        raise
            except OSError as error:
                first_error = first_error or error
                continue
            return path
        assert first_error is not None
        raise first_error

    def replay(self) -> tuple[int, list[str]]:
        """Write the results kept in the journals into the database (idempotent).

        Results whose key is there already count as written. A journal is removed when every
        line is in; otherwise it keeps (atomically rewritten) the lines that are not. Runs that
        share the database share the journals: each is locked while read or appended to.

        Returns:
            (how many results were written, one message per line that stays in a journal).
        """
        written = 0
        problems: list[str] = []
        for path in (self.journal_path, self.fallback_journal_path):
            if not path.exists():
                continue
            try:
                count, messages = self._replay(path)
            except OSError as error:
                problems.append(f"journal {path} cannot be read or rewritten ({error}); its results stay there.")
                continue
            written, problems = written + count, problems + messages
        return written, problems

    def _replay(self, path: Path) -> tuple[int, list[str]]:
        written, remaining, problems = 0, [], []
        with self._locked_journal(path, "r") as handle:
            busy: StoreWriteError | None = None
            for number, line in enumerate(handle.read().split("\n"), start=1):
                if not line.strip():
                    continue
                if busy is not None:  # the database refuses writes now: keep the rest untried
                    remaining.append(line)
                    continue
                try:
                    written += self.add(CellResult(**json.loads(line)))
                except StoreWriteError as error:
                    busy = error
                    remaining.append(line)
                except (ValueError, TypeError) as error:
                    remaining.append(line)
                    problems.append(f"{path} line {number} stays there: {error}")
            if busy is not None:
                problems.append(f"{len(remaining)} results stay in {path}: {busy}")
            if remaining:
                content = ("\n".join(remaining) + "\n").encode("utf-8")

                def write(target: BinaryIO) -> None:
                    target.write(content)

                atomic_write(path, write)
            else:
                path.unlink(missing_ok=True)
        return written, problems

    @contextlib.contextmanager
    def _locked_journal(self, path: Path, mode: str) -> Iterator[IO[str]]:
        """The journal opened in ``mode`` under an exclusive lock (POSIX), on its current file.

        A replay replaces or removes the file; one who waited for the lock on the old file opens
        the path again, so no line goes to a file nobody reads.
        """
        while True:
            try:
                handle = open(path, mode, encoding="utf-8")
            except FileNotFoundError:
                if mode != "r":
                    raise
                yield io.StringIO()  # nothing to read: another run replayed it meanwhile
                return
            try:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                    try:
                        current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
                    except FileNotFoundError:
                        current = False
                    if not current:
                        continue
                yield handle
                return
            finally:
                handle.close()

    def results(self, suite: str | None = None, *, latest_only: bool = False) -> list[CellResult]:
        """Finished cells (of one suite), ordered by suite, env name, agent and seed.

        Args:
            suite: only this suite's cells.
            latest_only: of the cells that differ only in their config (a suite file that was
                edited), keep the one written last, so that a leaderboard shows the suite as it is.
        """
        if not self._columns:
            return []
        names = [item.name for item in fields(CellResult)]
        selected = ", ".join(name if name in self._columns else f"{self._column(name)} AS {name}" for name in names)
        query = f"SELECT {selected}, rowid FROM cells"
        query += " WHERE suite = ?" if suite else ""
        query += f" ORDER BY suite, {self._column('env_name')}, agent, seed, finished_at, rowid"
        latest: dict[tuple[str, str, str, int], CellResult] = {}
        results = []
        for row in self._connection.execute(query, (suite,) if suite else ()):
            result = self._read_row(dict(zip(names, row[:-1], strict=True)), row[-1])
            results.append(result)
            latest[result.key[:4]] = result  # the key holds env_name: variants of one env id stay distinct
        return list(latest.values()) if latest_only else results

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
