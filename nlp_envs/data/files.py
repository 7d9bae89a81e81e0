"""Reading a user's own data files (CSV, JSONL or plain text) with errors that say what to fix."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

TABLE_SUFFIXES = (".csv", ".jsonl")


class DataFileError(ValueError):
    """A user data file that cannot be used as it is; the message names the file, row and fix."""


def read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a ``.csv`` (with a header) or ``.jsonl`` file, keeping only ``columns``, as strings.

    Raises:
        DataFileError: the file is missing, has another suffix, is not UTF-8 (the row is named),
            lacks a column, has a malformed line or has no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Data file {str(path)!r} does not exist; give the path of a .csv or .jsonl file.")
    if path.suffix not in TABLE_SUFFIXES:
        raise DataFileError(f"Data file {str(path)!r} has suffix {path.suffix!r}; expected one of {TABLE_SUFFIXES}.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = raw[: error.start].count(b"\n") + 1
        raise DataFileError(
            f"Data file {str(path)!r} is not UTF-8: byte {raw[error.start]:#04x} on line {row} "
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
    return [{column: str(row[column]) for column in columns} for row in rows]


def read_texts(path: Path, column: str = "text") -> list[str]:
    """Non-empty texts of a ``.txt`` file (one per line) or of a table's ``column``."""
    path = Path(path)
    if path.suffix == ".txt":
        if not path.is_file():
            raise DataFileError(
                f"Text file {str(path)!r} does not exist; give the path of a .txt, .csv or .jsonl file."
            )
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
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
    reader = csv.DictReader(text.splitlines())
    rows = list(reader)
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise DataFileError(
                f"Data file {str(path)!r}: line {number} has a different number of fields than the header "
                f"{reader.fieldnames}; quote fields that contain commas."
            )
    return rows


def _jsonl_rows(path: Path, text: str) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFileError(f"Data file {str(path)!r}: line {number} is not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise DataFileError(f"Data file {str(path)!r}: line {number} is not a JSON object.")
        rows.append(row)
    return rows
