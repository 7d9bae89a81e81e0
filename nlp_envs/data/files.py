"""Reading a user's own data files (CSV, JSONL or plain text) with errors that say what to fix."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from nlp_envs.data.text import tokenize

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
