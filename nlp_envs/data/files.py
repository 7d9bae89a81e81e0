"""Reading a user's own data files (CSV, JSONL or plain text) with errors that say what to fix."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from nlp_envs.data.text import tokenize

TABLE_SUFFIXES = (".csv", ".jsonl")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def file_stamp(value: Any) -> tuple[int, int, int] | None:
    """``(inode, size, mtime in ns)`` of the regular file that ``value`` names; None for anything else."""
    if not isinstance(value, (str, os.PathLike)):
        return None
    try:
        found = os.stat(value)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns) if stat.S_ISREG(found.st_mode) else None


class FileCached(Generic[_P, _R]):
    """A function cached by :func:`file_cache`: called as the function, with ``cache_clear()`` as lru_cache's."""

    def __init__(self, function: Callable[_P, _R], maxsize: int) -> None:
        functools.update_wrapper(self, function)
        self._cached = functools.lru_cache(maxsize=maxsize)(self._call)
        self._function = function

    def _call(self, stamps: tuple[Any, ...], args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> _R:
        return self._function(*args, **dict(kwargs))

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """The function's result, cached by its arguments and the stamps of the files they name."""
        stamps = tuple(file_stamp(value) for value in (*args, *kwargs.values()))
        return self._cached(stamps, args, tuple(sorted(kwargs.items())))

    def cache_clear(self) -> None:
        """Forget every cached result."""
        self._cached.cache_clear()


def file_cache(maxsize: int) -> Callable[[Callable[_P, _R]], FileCached[_P, _R]]:
    """``functools.lru_cache`` whose key also holds the :func:`file_stamp` of every argument naming a file.

    Loaders and the tables built from them are cached per process by the data's name or path; keyed
    by the path alone, a file the user edits (or replaces) between two ``gym.make`` calls of one
    process (a notebook) would go on giving the old content without a word. The stamp makes an
    edited file a new key, at the cost of one ``stat`` per call.
    """

    def decorate(function: Callable[_P, _R]) -> FileCached[_P, _R]:
        return FileCached(function, maxsize)

    return decorate


class DataFileError(ValueError):
    """A user data file that cannot be used as it is; the message names the file, row and fix."""


class JSONProblem(ValueError):
    """Text that :func:`parse_json` refuses; the message says what is wrong, the caller says where."""

    def with_encoding(self) -> str:
        """The message for a whole file, which must be UTF-8 JSON ("is not valid UTF-8 JSON (...)")."""
        return str(self).replace("is not valid JSON", "is not valid UTF-8 JSON", 1)


def parse_json(text: str) -> Any:
    """``json.loads`` that also refuses a key repeated in one object and nesting too deep to parse.

    Python's ``json`` keeps the last of two equal keys without a word and raises ``RecursionError``
    on deeply nested input; both become a :class:`JSONProblem` whose message names the problem.

    Raises:
        JSONProblem: the text is not JSON, repeats a key, or is nested too deeply.
    """
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as error:
        raise JSONProblem(f"is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:
        raise JSONProblem("is nested too deeply to parse (thousands of levels of [ or {)") from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONProblem(f"repeats the key {key!r} in one object (the first value would be lost silently)")
        result[key] = value
    return result


def check_file(path: Path, what: str, expected: str) -> None:
    """Refuse a ``path`` that is not a readable regular file, saying which case it is.

    Args:
        path: the path given by the user.
        what: how messages name it, e.g. ``"Data file"``.
        expected: what to give instead, e.g. ``"a .csv or .jsonl file"``.

    Raises:
        DataFileError: the path is a folder, does not exist, or is not a regular file.
    """
    if path.is_dir():
        raise DataFileError(f"{what} {str(path)!r} is a folder, not a file; give the path of {expected}.")
    if not path.exists():
        raise DataFileError(f"{what} {str(path)!r} does not exist; give the path of {expected}.")
    if not path.is_file():
        raise DataFileError(f"{what} {str(path)!r} is not a regular file; give the path of {expected}.")


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        reason = error.strerror or error
        raise DataFileError(f"{what} {str(path)!r} cannot be read ({reason}); check its permissions.") from None


def read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a ``.csv`` (with a header) or ``.jsonl`` file, keeping only ``columns``, as strings.

    Raises:
        DataFileError: the file is missing or a folder, has another suffix, is not UTF-8 (the row is
            named), lacks a column, has a malformed line, a ``null``, list or object value in a kept
            column (the row is named) or has no rows.
    """
    path = Path(path)
    check_file(path, "Data file", "a .csv or .jsonl file")
    if path.suffix not in TABLE_SUFFIXES:
        raise DataFileError(f"Data file {str(path)!r} has suffix {path.suffix!r}; expected one of {TABLE_SUFFIXES}.")
    raw = _read_bytes(path, "Data file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataFileError(
            f"Data file {str(path)!r} is not UTF-8: byte {raw[error.start]:#04x} on line {line} "
            "cannot be decoded; re-save the file as UTF-8."
        ) from None
    rows = _csv_rows(path, text) if path.suffix == ".csv" else _jsonl_rows(path, text)
    if not rows:
        raise DataFileError(f"Data file {str(path)!r} has no rows; it needs a header and at least one row.")
    for number, row in enumerate(rows, start=1):
        missing = [column for column in columns if column not in row]
        if missing:
            raise DataFileError(
                f"Data file {str(path)!r}: row {number} has no column {missing[0]!r}; its columns are "
                f"{sorted(row)}. Rename the column or pass the column name as a keyword argument."
            )
        for column in columns:
            value = row[column]
            if value is None or isinstance(value, (list, dict)):
                shown = "null" if value is None else type(value).__name__
                raise DataFileError(
                    f"Data file {str(path)!r}: row {number} has {shown} in column {column!r}; every row needs a "
                    "string or number there (fill it in or remove the row)."
                )
    return [{column: str(row[column]) for column in columns} for row in rows]


def read_texts(path: Path, column: str = "text") -> list[str]:
    """Non-empty texts of a ``.txt`` file (one per line) or of a table's ``column``."""
    path = Path(path)
    if path.suffix == ".txt":
        check_file(path, "Text file", "a .txt, .csv or .jsonl file")
        try:
            lines = _read_bytes(path, "Text file").decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataFileError(
                f"Text file {str(path)!r} is not UTF-8 ({error.reason}); re-save it as UTF-8."
            ) from None
        texts = [line for line in lines if line.strip()]
    else:
        texts = [row[column] for row in read_table(path, [column]) if row[column].strip()]
    if not texts:
        raise DataFileError(f"Data file {str(path)!r} has no non-empty texts.")
    return texts


def _csv_rows(path: Path, text: str) -> list[dict[str, str]]:
    # Rows are split by the csv module itself (newline=""), so a quoted field may hold line breaks,
    # U+2028 and the like; no field can be longer than the file, which is the limit set here
    # (Python's default of 128 KiB refuses long documents).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    previous_limit = csv.field_size_limit(max(len(text), csv.field_size_limit()))
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise DataFileError(
                    f"Data file {str(path)!r}: line {reader.line_num} has a different number of fields than the "
                    f"header {reader.fieldnames}; quote fields that contain commas."
                )
            rows.append(row)
    finally:
        csv.field_size_limit(previous_limit)
    return rows


def _jsonl_rows(path: Path, text: str) -> list[dict[str, str]]:
    rows = []
    # Lines end at "\n" only: U+2028, U+0085 and friends are valid inside JSON strings, and a
    # trailing "\r" is JSON whitespace.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = parse_json(line)
        except JSONProblem as problem:
            raise DataFileError(f"Data file {str(path)!r}: line {number} {problem}; fix that line.") from None
        if not isinstance(row, dict):
            raise DataFileError(f"Data file {str(path)!r}: line {number} is not a JSON object.")
        rows.append(row)
    return rows


def read_labelled(path: Path, text_column: str = "text", label_column: str = "label") -> list[tuple[str, str]]:
    """``(text, label)`` rows of a ``.csv`` or ``.jsonl`` file for classification, checked.

    Raises:
        DataFileError: everything :func:`read_table` checks, plus an empty text or label (the row is
            named), a text without a single word, and fewer than two distinct labels.
    """
    rows = read_table(path, [text_column, label_column])
    labelled = []
    for number, row in enumerate(rows, start=1):
        text, label = row[text_column].strip(), row[label_column].strip()
        if not text:
            raise DataFileError(
                f"Data file {str(path)!r}: row {number} has an empty {text_column!r}; every row needs a text "
                "to classify (remove the row or fill it in)."
            )
        if not tokenize(text):
            raise DataFileError(
                f"Data file {str(path)!r}: row {number} has no word in its {text_column!r} ({text[:40]!r}); "
                "a text needs at least one word of letters or digits."
            )
        if not label:
            raise DataFileError(
                f"Data file {str(path)!r}: row {number} has an empty {label_column!r}; every row needs a label."
            )
        labelled.append((text, label))
    labels = sorted({label for _, label in labelled})
    if len(labels) < 2:
        raise DataFileError(
            f"Data file {str(path)!r} has {len(labels)} distinct label(s) {labels} in column {label_column!r}; "
            "classification needs at least 2. Check the label column name or add documents of other labels."
        )
    return labelled
