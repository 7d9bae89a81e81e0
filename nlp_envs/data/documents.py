"""Labelled documents for classification: drugs.com reviews, chatterbot topics, or a user's own file.

Every loader returns a :class:`LabelledDocuments` with a fixed train/test split, built offline from
files that a pip package installed (or that the user gave) and cached per process.
"""

from __future__ import annotations

import csv
import html
import io
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp_envs.data import CHATTERBOT, DRUG_REVIEWS, MissingDataError
from nlp_envs.data.files import file_cache, read_labelled

#: One document in ``TEST_EVERY`` of each label goes to the test split (user files and chatterbot).
TEST_EVERY = 5
#: Chatterbot topics with fewer distinct conversations than this are dropped (too small to split).
MIN_TOPIC_DOCUMENTS = 10


@dataclass(frozen=True)
class LabelledDocuments:
    """Texts with labels, split into train and test.

    Attributes:
        name: the dataset name (``"drugreview"``, ``"chatterbot"``) or the user file's path.
        labels: the label names; a label id is an index into this tuple (sorted names).
        train_texts: the training texts.
        train_labels: their label ids, ``int64`` of shape ``(len(train_texts),)``.
        test_texts: the test texts.
        test_labels: their label ids.
    """

    name: str
    labels: tuple[str, ...]
    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray

    def split(self, name: str) -> tuple[tuple[str, ...], np.ndarray]:
        """The texts and label ids of split ``"train"`` or ``"test"``."""
        if name == "train":
            return self.train_texts, self.train_labels
        if name == "test":
            return self.test_texts, self.test_labels
        raise ValueError(f"Unknown split {name!r}; expected 'train' or 'test'.")


@file_cache(maxsize=8)
def load_documents(name_or_path: str, text_column: str = "text", label_column: str = "label") -> LabelledDocuments:
    """Load ``"drugreview"``, ``"chatterbot"`` or a user ``.csv``/``.jsonl`` file with text and label columns.

    A user file is deduplicated (repeated (text, label) pairs are kept once) and split per label:
    ordered by a stable hash of the text, every fifth document of each label is test data.

    Raises:
        MissingDataError: the package that carries a named dataset is not installed.
        nlp_envs.data.files.DataFileError: a user file that cannot be used (the message says why).
    """
    if name_or_path == DRUG_REVIEWS.name:
        return _load_drug_reviews()
    if name_or_path == CHATTERBOT.name:
        return _load_chatterbot()
    rows = read_labelled(Path(name_or_path), text_column, label_column)
    return _split_by_label(str(name_or_path), rows)


def _load_drug_reviews() -> LabelledDocuments:
    """The package's 600 train and 379 test drugs.com reviews (less one repeat), labelled by rating class."""
    archive = DRUG_REVIEWS.location() / "assets" / "drugsCom.zip"
    splits = {}
    with zipfile.ZipFile(archive) as files:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            reader = csv.DictReader(io.StringIO(files.read(member).decode("utf-8")), delimiter="\t")
            # Reviews are stored as '"text"' with HTML entities (&#039; for an apostrophe).
            splits[split] = [(_clean_review(row["review"]), row["rating"]) for row in reader]
    # One test review is also a training review (the same text under two drugs): keep it in train only.
    train_texts = {text for text, _ in splits["train"]}
    splits["test"] = [(text, label) for text, label in splits["test"] if text not in train_texts]
    labels = tuple(sorted({label for rows in splits.values() for _, label in rows}))
    index = {label: i for i, label in enumerate(labels)}

    def encode(rows: list[tuple[str, str]]) -> tuple[tuple[str, ...], np.ndarray]:
        return tuple(text for text, _ in rows), np.array([index[label] for _, label in rows], dtype=np.int64)

    return LabelledDocuments(DRUG_REVIEWS.name, labels, *encode(splits["train"]), *encode(splits["test"]))


def _clean_review(review: str) -> str:
    """Unescape HTML entities, drop the quotes around the review, straighten apostrophes."""
    return html.unescape(review).strip().strip('"').strip().replace("\u2019", "'")


def chatterbot_topic_files() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each English topic file of chatterbot-corpus, in name order: ``(path, parsed YAML content)``.

    Raises:
        MissingDataError: PyYAML, which the corpus's files need, is not installed.
    """
    try:
        import yaml
    except ImportError:
        raise MissingDataError(
            "Dataset 'chatterbot' is stored as YAML and needs the Python package 'pyyaml', which is not "
            "installed. Install it with:\n    pip install 'pyyaml>=6,<7'"
        ) from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser where PyYAML was built with libyaml
    for path in sorted((CHATTERBOT.location() / "data" / "english").glob("*.yml")):
        yield path, yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def _load_chatterbot() -> LabelledDocuments:
    """The English topic files: one document per distinct conversation, labelled by its topic."""
    rows: list[tuple[str, str]] = []
    for _path, content in chatterbot_topic_files():
        topic = str(content["categories"][0])
        topic_rows = dict.fromkeys(
            ("\n".join(str(statement) for statement in conversation), topic)
            for conversation in content["conversations"]
        )
        if len(topic_rows) >= MIN_TOPIC_DOCUMENTS:
            rows.extend(topic_rows)
    return _split_by_label(CHATTERBOT.name, rows)


def _split_by_label(name: str, rows: Sequence[tuple[str, str]]) -> LabelledDocuments:
    """Deduplicate ``(text, label)`` rows and split each label's documents 4:1 by a stable text hash."""
    unique = list(dict.fromkeys(rows))
    by_label: dict[str, list[str]] = {}
    for text, label in unique:
        by_label.setdefault(label, []).append(text)
    labels = tuple(sorted(by_label))
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for index, label in enumerate(labels):
        for rank, text in enumerate(sorted(by_label[label], key=_stable_hash)):
            (test if rank % TEST_EVERY == TEST_EVERY // 2 else train).append((text, index))
    # Keep the file's order inside each split, so that listings read like the source.
    order = {row: i for i, row in enumerate(unique)}
    train.sort(key=lambda item: order[(item[0], labels[item[1]])])
    test.sort(key=lambda item: order[(item[0], labels[item[1]])])
    return LabelledDocuments(
        name,
        labels,
        tuple(text for text, _ in train),
        np.array([label for _, label in train], dtype=np.int64),
        tuple(text for text, _ in test),
        np.array([label for _, label in test], dtype=np.int64),
    )


def _stable_hash(text: str) -> tuple[int, str]:
    return zlib.crc32(text.encode("utf-8")), text
