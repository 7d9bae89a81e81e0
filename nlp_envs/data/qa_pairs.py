"""Question/answer pairs for answer selection: chatterbot Q/A, chitchat message/reply, or a user's file.

Every loader returns :class:`QAPairs` with a fixed train/test split, built offline and cached per
process. Each pair is encoded once for the match features of the QA task: its question's and its
answer's word sets, TF-IDF vectors (IDF of the training split) and mean PPMI word vectors (the
project's :func:`nlp_envs.language_model.ppmi_vectors` of the training texts), so that the features
of any batch of (question, candidate answer) pairs are a few numpy calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nlp_envs.data import CHATTERBOT, CHITCHAT
from nlp_envs.data.documents import chatterbot_topic_files
from nlp_envs.data.files import DataFileError, read_table
from nlp_envs.data.text import Vocabulary, in_test_split, tokenize
from nlp_envs.language_model import ppmi_vectors

#: The named datasets; ``"both"`` is chatterbot and chitchat together.
QA_DATASETS = (CHITCHAT.name, CHATTERBOT.name, "both")
#: Test share (percent) of chatterbot conversations and of a user file's questions; chitchat keeps corpus.py's 10.
TEST_PERCENT = 20
#: The PPMI vectors cover the training split's most frequent words; their size.
PPMI_VOCAB, PPMI_DIM = 2000, 32
#: Features per (question, answer) pair: word overlap (Jaccard), TF-IDF cosine, PPMI-vector cosine.
FEATURES = ("overlap", "tfidf", "ppmi")


@dataclass(frozen=True)
class _Sparse:
    """Rows of sorted unique word ids with weights (CSR), one row per text."""

    indptr: np.ndarray
    ids: np.ndarray
    weights: np.ndarray

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(entry, ids, weights)`` of the entries of ``rows``: ``entry`` is the position in ``rows``."""
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        entry = np.repeat(np.arange(len(rows)), lengths)
        positions = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions += np.repeat(starts, lengths)
        return entry, self.ids[positions], self.weights[positions]

    @property
    def sizes(self) -> np.ndarray:
        """The number of distinct words of each row."""
        return np.diff(self.indptr)


@dataclass(frozen=True)
class QASplit:
    """One split: its pairs, their groups and encodings (read-only arrays).

    Attributes:
        questions: the question texts.
        answers: the true answer texts, one per question.
        groups: per pair, its group id (chatterbot topic file, chitchat conversation, or the pair
            itself in a user file): distractors from the same group are the hard ones.
        group_starts: per pair, the index of its group's first pair (pairs of a group are contiguous).
        group_sizes: per pair, the size of its group.
        answer_ids: per pair, the id of its answer's normalised words (equal texts, equal ids).
        distinct_answers: the number of distinct answer ids.
        answer_lengths: per pair, its answer's length in words.
    """

    questions: tuple[str, ...]
    answers: tuple[str, ...]
    groups: np.ndarray
    group_starts: np.ndarray
    group_sizes: np.ndarray
    answer_ids: np.ndarray
    distinct_answers: int
    answer_lengths: np.ndarray
    _question_words: _Sparse
    _answer_words: _Sparse
    _question_tfidf: _Sparse
    _answer_tfidf: _Sparse
    _question_vectors: np.ndarray
    _answer_vectors: np.ndarray

    def features(self, questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """The match features of question ``questions[i]`` with answer ``answers[i]`` (pair indices).

        Returns:
            ``(len(questions), 3)`` float32: Jaccard overlap of the word sets in ``[0, 1]``, TF-IDF
            cosine in ``[0, 1]`` and PPMI mean-vector cosine in ``[-1, 1]`` (``FEATURES``).
        """
        questions, answers = np.asarray(questions, np.int64).ravel(), np.asarray(answers, np.int64).ravel()
        # The word-set and TF-IDF rows share their word ids: one sort gives both products.
        shared, tfidf = _sparse_dots(self._question_tfidf, self._answer_tfidf, questions, answers)
        union = self._question_words.sizes[questions] + self._answer_words.sizes[answers] - shared
        overlap = shared / np.maximum(union, 1)
        ppmi = np.einsum("ij,ij->i", self._question_vectors[questions], self._answer_vectors[answers])
        result = np.stack([overlap, tfidf, ppmi], axis=1).astype(np.float32)
        return np.clip(result, -1.0, 1.0, out=result)


@dataclass(frozen=True)
class QAPairs:
    """A dataset's train and test splits; test questions never occur (as words) in the training split."""

    name: str
    train: QASplit
    test: QASplit

    def split(self, name: str) -> QASplit:
        """The split ``"train"`` or ``"test"``."""
        if name not in ("train", "test"):
            raise ValueError(f"Unknown split {name!r}; expected 'train' or 'test'.")
        return self.train if name == "train" else self.test


def _sparse_dots(
    left: _Sparse, right: _Sparse, left_rows: np.ndarray, right_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per ``i``: the word ids rows ``left[left_rows[i]]`` and ``right[right_rows[i]]`` share, and their dot product.

    A sort of the (entry, word id) keys puts a word shared by both rows next to itself.
    """
    left_entry, left_ids, left_weights = left.gather(left_rows)
    right_entry, right_ids, right_weights = right.gather(right_rows)
    width = np.int64(max(int(left_ids.max(initial=0)), int(right_ids.max(initial=0))) + 1)
    keys = np.concatenate([left_entry * width + left_ids, right_entry * width + right_ids])
    weights = np.concatenate([left_weights, right_weights])
    order = np.argsort(keys, kind="stable")
    keys, weights = keys[order], weights[order]
    # Word ids are unique within a row, so an equal neighbour is the same word in both texts.
    same = np.flatnonzero(keys[1:] == keys[:-1])
    entries = keys[same] // width
    shared = np.bincount(entries, minlength=len(left_rows)).astype(np.float64)
    return shared, np.bincount(entries, weights=weights[same] * weights[same + 1], minlength=len(left_rows))


Row = tuple[str, str, str, str]  # (question, answer, group, split key)


def _chatterbot_rows() -> list[Row]:
    """Consecutive statements of each English conversation: (statement, next statement, topic file)."""
    rows: list[Row] = []
    for path, content in chatterbot_topic_files():
        topic = f"chatterbot:{path.stem}"
        for conversation in content["conversations"]:
            statements = [str(statement) for statement in conversation]
            key = "chatterbot:" + "\n".join(statements)
            rows.extend(
                (question, answer, topic, key) for question, answer in zip(statements[:-1], statements[1:], strict=True)
            )
    return rows


def _chitchat_rows() -> list[Row]:
    """Consecutive messages of each chat (a message: one sender's utterances joined), by conversation."""
    with open(CHITCHAT.location() / "dataset.json", encoding="utf-8") as file:
        conversations = json.load(file)
    rows: list[Row] = []
    for conversation_id, conversation in conversations.items():
        messages = [" ".join(utterance["text"] for utterance in message) for message in conversation["messages"]]
        group = f"chitchat:{conversation_id}"
        rows.extend(
            (question, answer, group, group) for question, answer in zip(messages[:-1], messages[1:], strict=True)
        )
    return rows


def _file_rows(path: Path, question_column: str, answer_column: str) -> list[Row]:
    """A user's ``question``/``answer`` table; every pair is its own group (no hard distractors)."""
    rows: list[Row] = []
    for number, row in enumerate(read_table(path, [question_column, answer_column]), start=1):
        for column in (question_column, answer_column):
            if not tokenize(row[column]):
                raise DataFileError(
                    f"Data file {str(path)!r}: row {number} has no word in its {column!r} ({row[column][:40]!r}); "
                    "every question and answer needs at least one word of letters or digits."
                )
        question, answer = row[question_column].strip(), row[answer_column].strip()
        rows.append((question, answer, f"row {number}", " ".join(tokenize(question))))
    return rows


@lru_cache(maxsize=8)
def load_pairs(name_or_path: str, question_column: str = "question", answer_column: str = "answer") -> QAPairs:
    """The pairs of ``"chitchat"``, ``"chatterbot"``, ``"both"`` or a user ``.csv``/``.jsonl`` file, split.

    Pairs without a word in the question or answer are dropped; a question (compared by its
    words) keeps its first pair only, so every question has one true answer. Chitchat is split by
    conversation (10% test), chatterbot by conversation (20%), a user file by question (20%);
    test pairs whose question also occurs in the training split are dropped.

    Raises:
        DataFileError: a user file that cannot be read or has too few pairs in a split.
    """
    if name_or_path == CHATTERBOT.name:
        rows, percent = _chatterbot_rows(), TEST_PERCENT
    elif name_or_path == CHITCHAT.name:
        rows, percent = _chitchat_rows(), 10
    elif name_or_path == "both":
        rows, percent = _chatterbot_rows() + _chitchat_rows(), 0
    else:
        rows, percent = _file_rows(Path(name_or_path), question_column, answer_column), TEST_PERCENT
    splits: dict[str, dict[str, tuple[str, str, str, list[str], list[str]]]] = {"train": {}, "test": {}}
    for question, answer, group, key in rows:
        question_words, answer_words = tokenize(question), tokenize(answer)
        if not question_words or not answer_words:
            continue
        # "both" keeps each source's own split rule: 10% of chitchat, 20% of chatterbot.
        share = percent or (10 if key.startswith("chitchat:") else TEST_PERCENT)
        split = splits["test" if in_test_split(key, share) else "train"]
        split.setdefault(" ".join(question_words), (question, answer, group, question_words, answer_words))
    for seen in splits["train"]:
        splits["test"].pop(seen, None)
    for name, pairs in splits.items():
        if len(pairs) < 2:
            raise DataFileError(
                f"Data file {name_or_path!r} gives {len(pairs)} distinct {name} question(s) after deduplication; "
                "each split needs at least 2, so give a file with at least a few dozen distinct questions."
            )
    train_rows, test_rows = list(splits["train"].values()), list(splits["test"].values())
    encoder = _Encoder([words for row in train_rows for words in (row[3], row[4])])
    return QAPairs(name_or_path, encoder.split(train_rows), encoder.split(test_rows))


class _Encoder:
    """Word ids, IDF and PPMI vectors fitted on the training texts; encodes a split's pairs."""

    def __init__(self, train_words: list[list[str]]) -> None:
        self.index: dict[str, int] = {}
        entries, ids, _ = self._ids(train_words, self.index)
        self.size = len(self.index)
        # Document frequency: each (text, word) once; smoothed IDF as scikit-learn's.
        frequency = np.bincount(np.unique(entries * self.size + ids) % self.size, minlength=self.size)
        self.idf = np.log((1 + len(train_words)) / (1 + frequency)) + 1.0
        self.unseen_idf = float(np.log(1 + len(train_words)) + 1.0)  # a word unseen in training: the largest IDF
        vocab = Vocabulary.from_sentences(train_words, PPMI_VOCAB)
        self.vocab_ids = np.full(self.size, vocab.unk_id, dtype=np.int64)
        for word, word_id in self.index.items():
            self.vocab_ids[word_id] = vocab.index.get(word, vocab.unk_id)
        lengths = np.array([len(words) for words in train_words], dtype=np.int64)
        self.vectors = ppmi_vectors(self.vocab_ids[ids], lengths, vocab.size, PPMI_DIM).astype(np.float64)

    @staticmethod
    def _ids(texts: list[list[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each word's text and id (new words get new ids in ``index``), and each text's length."""
        lengths = np.array([len(words) for words in texts], dtype=np.int64)
        ids = np.array([index.setdefault(word, len(index)) for words in texts for word in words], dtype=np.int64)
        return np.repeat(np.arange(len(texts)), lengths), ids, lengths

    def split(self, rows: list[tuple[str, str, str, list[str], list[str]]]) -> QASplit:
        """Encode a split's ``(question, answer, group, question words, answer words)`` rows."""
        rows = sorted(rows, key=lambda row: row[2])  # pairs of a group contiguous (stable: file order inside)
        group_names = [row[2] for row in rows]
        changes = np.flatnonzero([i == 0 or group_names[i] != group_names[i - 1] for i in range(len(rows))])
        sizes = np.diff(np.append(changes, len(rows)))
        groups = np.repeat(np.arange(len(changes)), sizes)
        answer_keys = [" ".join(row[4]) for row in rows]
        distinct = {key: i for i, key in enumerate(dict.fromkeys(answer_keys))}
        index = dict(self.index)  # words unseen in training get ids past the training ones, in this split only
        question_words, question_tfidf, question_vectors = self._encode([row[3] for row in rows], index)
        answer_words, answer_tfidf, answer_vectors = self._encode([row[4] for row in rows], index)
        answer_ids = np.array([distinct[key] for key in answer_keys], dtype=np.int64)
        group_starts, group_sizes = changes[groups], sizes[groups]
        for array in (groups, group_starts, group_sizes, answer_ids):
            array.flags.writeable = False
        return QASplit(
            tuple(row[0] for row in rows),
            tuple(row[1] for row in rows),
            groups,
            group_starts,
            group_sizes,
            answer_ids,
            len(distinct),
            np.array([len(row[4]) for row in rows], dtype=np.int64),
            question_words,
            answer_words,
            question_tfidf,
            answer_tfidf,
            question_vectors,
            answer_vectors,
        )

    def _encode(self, texts: list[list[str]], index: dict[str, int]) -> tuple[_Sparse, _Sparse, np.ndarray]:
        """Word sets (weight 1), unit TF-IDF vectors and unit mean PPMI vectors of tokenized ``texts``."""
        entries, ids, _ = self._ids(texts, index)
        width = len(index)
        unique, counts = np.unique(entries * width + ids, return_counts=True)  # sorted by text, then word id
        rows, word_ids = unique // width, unique % width
        idf = np.concatenate([self.idf, np.full(width - self.size, self.unseen_idf)])
        weights = counts * idf[word_ids]
        norms = np.sqrt(np.bincount(rows, weights=weights**2, minlength=len(texts)))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(texts)))]).astype(np.int64)
        vocab_ids = np.concatenate([self.vocab_ids, np.full(width - self.size, Vocabulary.UNK_ID)])[ids]
        sums = np.stack(
            [np.bincount(entries, weights=column[vocab_ids], minlength=len(texts)) for column in self.vectors.T], axis=1
        )
        lengths = np.linalg.norm(sums, axis=1, keepdims=True)
        vectors = np.where(lengths > 0, sums / np.where(lengths > 0, lengths, 1.0), 0.0).astype(np.float32)
        words = _Sparse(indptr, word_ids, np.ones(len(word_ids)))
        tfidf = _Sparse(indptr, word_ids, weights / norms[rows])
        for array in (indptr, word_ids, tfidf.weights, words.weights, vectors):
            array.flags.writeable = False
        return words, tfidf, vectors
