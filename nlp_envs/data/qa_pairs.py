"""Question/answer pairs for answer selection: chatterbot Q/A, chitchat message/reply, or a user's file.

Every loader returns :class:`QAPairs` with a fixed train/test split, built offline and cached per
process. Each pair is encoded once for the match features of the QA task: its question's and its
answer's word sets, TF-IDF vectors (IDF of the training split) and mean PPMI word vectors (the
project's :func:`nlp_envs.language_model.ppmi_vectors` of the training texts), so that the features
of any batch of (question, candidate answer) pairs are a few numpy calls. A split small enough
(at most ``TABLE_LIMIT`` question-answer combinations: chatterbot, a FAQ file) also keeps the
features of every combination in a table, so that a reset reads them instead of computing them.

The encoded pairs are cached on disk (``$NLP_ENVS_CACHE``, default ``~/.cache/nlp-envs``, as the
NextWord corpora are: :func:`nlp_envs.data.corpus.cache_dir`), keyed by the package version of a
named dataset or by the content of a user file and its column names, so a new process skips the
seconds of building them (the PPMI vectors' SVD, chitchat's 110,000 pairs). A cache file that
cannot be read or does not hold well-formed pairs is reported once with a
:class:`~nlp_envs.data.corpus.CorpusCacheWarning` naming it, and rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp_envs.atomic import atomic_write
from nlp_envs.data import CHATTERBOT, CHITCHAT, DatasetInfo

# The corpus cache's folder, warning and checks serve this cache too (one cache, one set of rules).
from nlp_envs.data.corpus import _BadCache, _expect_array, cache_dir, read_cached
from nlp_envs.data.documents import chatterbot_topic_files
from nlp_envs.data.files import DataFileError, file_cache, read_table
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
#: A split keeps a table of the features of all its (question, answer) combinations when it has at
#: most this many (12 bytes each: 24 MB at most; chatterbot's training split has 651,249).
TABLE_LIMIT = 2_000_000
_TABLE_CHUNK = 16  # questions per features() call while the table is filled
# Up to this many (question, answer) entries, features() indexes its table with both index arrays
# (fewer numpy calls: a single env's reset); above it, one take of flattened rows costs less.
_FEW_ENTRIES = 64
#: Bump when the encoding changes, so that old cache files are not read.
FORMAT_VERSION = 1


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
    #: ``(questions, questions, 3)`` float32: the features of every combination (``features``
    #: computed once), or None for a split of more than ``TABLE_LIMIT`` combinations.
    table: np.ndarray | None = None

    def features(self, questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """The match features of question ``questions[i]`` with answer ``answers[i]`` (pair indices).

        Args:
            questions: pair indices of the questions.
            answers: pair indices of the answers, broadcastable with ``questions`` (e.g. ``(m, 1)``
                questions with ``(m, n)`` candidate answers each).

        Returns:
            Float32 of the broadcast shape plus a last axis of 3: Jaccard overlap of the word sets in
            ``[0, 1]``, TF-IDF cosine in ``[0, 1]`` and PPMI mean-vector cosine in ``[-1, 1]`` (``FEATURES``).
        """
        if self.table is not None:
            if np.size(answers) <= _FEW_ENTRIES:  # a few entries: one indexing call costs least
                return self.table[questions, answers]
            # Many: one take of whole rows of the flattened table (numpy's indexing with two broadcast
            # index arrays costs about 200 ns per entry, a take about a tenth of that).
            rows = self.table.reshape(-1, len(FEATURES))
            return rows.take(np.asarray(questions) * len(self.questions) + answers, axis=0)
        questions, answers = np.broadcast_arrays(np.asarray(questions, np.int64), np.asarray(answers, np.int64))
        shape = questions.shape
        questions, answers = questions.ravel(), answers.ravel()
        # The word-set and TF-IDF rows share their word ids: one sort gives both products.
        shared, tfidf = _sparse_dots(self._question_tfidf, self._answer_tfidf, questions, answers)
        union = self._question_words.sizes[questions] + self._answer_words.sizes[answers] - shared
        overlap = shared / np.maximum(union, 1)
        ppmi = np.einsum("ij,ij->i", self._question_vectors[questions], self._answer_vectors[answers])
        result = np.stack([overlap, tfidf, ppmi], axis=1).astype(np.float32)
        return np.clip(result, -1.0, 1.0, out=result).reshape(*shape, len(FEATURES))


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


@file_cache(maxsize=8)
def load_pairs(name_or_path: str, question_column: str = "question", answer_column: str = "answer") -> QAPairs:
    """The pairs of ``"chitchat"``, ``"chatterbot"``, ``"both"`` or a user ``.csv``/``.jsonl`` file, split.

    Pairs without a word in the question or answer are dropped; a question (compared by its
    words) keeps its first pair only, so every question has one true answer. Chitchat is split by
    conversation (10% test), chatterbot by conversation (20%), a user file by question (20%);
    test pairs whose question also occurs in the training split are dropped. Read from the disk
    cache when it holds them (see the module docstring).

    Raises:
        DataFileError: a user file that cannot be read or has too few pairs in a split.
    """
    key = _cache_key(name_or_path, question_column, answer_column)
    if key is None:  # a user file that cannot be read: building names the problem
        return _build_pairs(name_or_path, question_column, answer_column)
    path = cache_dir() / f"qa-{key}.npz"
    cached = read_cached(path, lambda: _read_cache(path, name_or_path), "QA pairs", stacklevel=3)
    if cached is not None:
        return cached
    pairs = _build_pairs(name_or_path, question_column, answer_column)
    try:
        atomic_write(path, lambda handle: np.savez(handle, allow_pickle=False, **_cache_arrays(pairs)))
    except OSError:
        pass  # A read-only home is no reason to fail: the pairs just are not cached.
    return pairs


def _cache_key(name_or_path: str, question_column: str, answer_column: str) -> str | None:
    """The cache key: the encoding's settings and the source's version (named data) or bytes (a file).

    None when a user file cannot be read (the build then raises the named error).
    """
    settings = [FORMAT_VERSION, TEST_PERCENT, PPMI_VOCAB, PPMI_DIM, TABLE_LIMIT]
    digest = hashlib.sha256(json.dumps([*settings, name_or_path, question_column, answer_column]).encode("utf-8"))
    sources: dict[str, tuple[DatasetInfo, ...]] = {
        CHATTERBOT.name: (CHATTERBOT,),
        CHITCHAT.name: (CHITCHAT,),
        "both": (CHATTERBOT, CHITCHAT),
    }
    if name_or_path in sources:
        for info in sources[name_or_path]:
            package = info.requirement.split("==")[0]
            try:
                digest.update(f"{package}=={importlib.metadata.version(package)}".encode())
            except importlib.metadata.PackageNotFoundError:
                return None  # not installed: building raises the error with the pip command
        return f"{name_or_path}-{digest.hexdigest()[:24]}"
    try:
        digest.update(Path(name_or_path).read_bytes())
    except OSError:
        return None
    return f"file-{digest.hexdigest()[:24]}"


def _build_pairs(name_or_path: str, question_column: str, answer_column: str) -> QAPairs:
    """Read, deduplicate, split and encode the pairs (what :func:`load_pairs` caches)."""
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
    train, test = encoder.split(train_rows), encoder.split(test_rows)
    return QAPairs(name_or_path, _with_table(train), _with_table(test))


def _with_table(split: QASplit) -> QASplit:
    """``split`` with its table of features (filled by ``features`` itself), if it has few enough combinations."""
    count = len(split.questions)
    if count * count > TABLE_LIMIT:
        return split
    table = np.empty((count, count, len(FEATURES)), dtype=np.float32)
    answers = np.arange(count)
    for start in range(0, count, _TABLE_CHUNK):
        questions = np.arange(start, min(start + _TABLE_CHUNK, count))
        table[questions] = split.features(np.repeat(questions, count), np.tile(answers, len(questions))).reshape(
            len(questions), count, len(FEATURES)
        )
    table.flags.writeable = False
    return dataclasses.replace(split, table=table)


# The per-pair integer arrays of a split, stored as they are.
_INTEGERS = ("groups", "group_starts", "group_sizes", "answer_ids", "answer_lengths")


def _cache_arrays(pairs: QAPairs) -> dict[str, np.ndarray]:
    """The arrays that :func:`_read_cache` turns back into ``pairs``."""
    arrays: dict[str, np.ndarray] = {}
    for name in ("train", "test"):
        split = pairs.split(name)
        texts = json.dumps([split.questions, split.answers]).encode("utf-8")
        arrays[f"{name}_texts"] = np.frombuffer(texts, dtype=np.uint8)
        for key in _INTEGERS:
            arrays[f"{name}_{key}"] = getattr(split, key)
        arrays[f"{name}_distinct_answers"] = np.array(split.distinct_answers, dtype=np.int64)
        for side, words, tfidf, vectors in (
            ("question", split._question_words, split._question_tfidf, split._question_vectors),
            ("answer", split._answer_words, split._answer_tfidf, split._answer_vectors),
        ):
            arrays[f"{name}_{side}_indptr"], arrays[f"{name}_{side}_words"] = words.indptr, words.ids
            arrays[f"{name}_{side}_tfidf"], arrays[f"{name}_{side}_vectors"] = tfidf.weights, vectors
        table = split.table if split.table is not None else np.zeros((0, 0, len(FEATURES)), dtype=np.float32)
        arrays[f"{name}_table"] = table
    return arrays


def _read_cache(path: Path, name: str) -> QAPairs:
    """The pairs stored at ``path``, checked array by array.

    Raises:
        FileNotFoundError: there is no cache file.
        _BadCache: the file cannot be read or does not hold well-formed pairs.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except Exception as error:  # BadZipFile, EOFError, zlib.error, OSError, ValueError...: rebuild
        raise _BadCache(f"{type(error).__name__}: {error}") from None
    try:
        return QAPairs(name, _read_split(arrays, "train"), _read_split(arrays, "test"))
    except KeyError as error:
        raise _BadCache(f"no array {error}") from None


def _read_split(arrays: dict[str, Any], name: str) -> QASplit:
    """One split of a cache file, checked; raises _BadCache (or KeyError for a missing array)."""
    _expect_array(arrays[f"{name}_texts"], f"{name}_texts", np.uint8, 1)
    try:
        texts = json.loads(bytes(arrays[f"{name}_texts"]).decode("utf-8"))
    except ValueError as error:
        raise _BadCache(f"{name}_texts is not UTF-8 JSON ({error})") from None
    if (
        not isinstance(texts, list)
        or len(texts) != 2
        or not all(isinstance(column, list) and all(isinstance(text, str) for text in column) for column in texts)
        or len(texts[0]) != len(texts[1])
        or len(texts[0]) < 2
    ):
        raise _BadCache(f"{name}_texts is not two equally long lists of at least 2 texts")
    count = len(texts[0])
    for key in (*_INTEGERS, "distinct_answers"):
        _expect_array(arrays[f"{name}_{key}"], f"{name}_{key}", np.int64, 0 if key == "distinct_answers" else 1)
    integers = {key: arrays[f"{name}_{key}"] for key in _INTEGERS}
    distinct = int(arrays[f"{name}_distinct_answers"])
    starts, sizes = integers["group_starts"], integers["group_sizes"]
    if any(len(values) != count for values in integers.values()):
        raise _BadCache(f"{name}: a per-pair array's length is not the {count} pairs")
    if (
        sizes.min() < 1
        or starts.min() < 0
        or (starts + sizes).max() > count
        or not 0 < distinct <= count
        or integers["answer_ids"].min() < 0
        or integers["answer_ids"].max() >= distinct
        or integers["answer_lengths"].min() < 1
    ):
        raise _BadCache(f"{name}: groups, answer ids or lengths out of range")
    sides = [_read_side(arrays, f"{name}_{side}", count) for side in ("question", "answer")]
    stored_table = arrays[f"{name}_table"]
    _expect_array(stored_table, f"{name}_table", np.float32, 3)
    empty, full = (0, 0, len(FEATURES)), (count, count, len(FEATURES))
    if stored_table.shape != (full if count * count <= TABLE_LIMIT else empty):
        raise _BadCache(f"{name}_table has shape {stored_table.shape} for {count} pairs (TABLE_LIMIT {TABLE_LIMIT:,})")
    table = None if stored_table.shape == empty else stored_table
    for array in (*integers.values(), *(array for side in sides for array in side[2:]), table):
        if array is not None:
            array.flags.writeable = False
    (question_words, question_tfidf, question_vectors), (answer_words, answer_tfidf, answer_vectors) = (
        side[:3] for side in sides
    )
    return QASplit(
        tuple(texts[0]),
        tuple(texts[1]),
        integers["groups"],
        starts,
        sizes,
        integers["answer_ids"],
        distinct,
        integers["answer_lengths"],
        question_words,
        answer_words,
        question_tfidf,
        answer_tfidf,
        question_vectors,
        answer_vectors,
        table,
    )


def _read_side(arrays: dict[str, Any], prefix: str, count: int) -> tuple[Any, ...]:
    """The word sets, TF-IDF rows and PPMI vectors of the questions or answers of a split, checked.

    Returns:
        ``(words, tfidf, vectors, indptr, ids, weights)``: the last three to be made read-only.
    """
    indptr, ids = arrays[f"{prefix}_indptr"], arrays[f"{prefix}_words"]
    weights, vectors = arrays[f"{prefix}_tfidf"], arrays[f"{prefix}_vectors"]
    for key, array, dtype, dimensions in (
        ("indptr", indptr, np.int64, 1),
        ("words", ids, np.int64, 1),
        ("tfidf", weights, np.float64, 1),
        ("vectors", vectors, np.float32, 2),
    ):
        _expect_array(array, f"{prefix}_{key}", dtype, dimensions)
    if (
        len(indptr) != count + 1
        or indptr[0] != 0
        or indptr[-1] != len(ids)
        or (np.diff(indptr) < 1).any()
        or len(weights) != len(ids)
        or (len(ids) and ids.min() < 0)
        or vectors.shape != (count, PPMI_DIM)
    ):
        raise _BadCache(f"{prefix}: word rows or vectors do not match the {count} texts")
    ones = np.ones(len(ids))
    ones.flags.writeable = False
    return _Sparse(indptr, ids, ones), _Sparse(indptr, ids, weights), vectors, indptr, ids, weights


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
