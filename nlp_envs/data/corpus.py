"""Sentence corpora for NextWord: the chitchat chats, or a user's own text file, loaded offline.

A corpus is tokenized once and kept as integer arrays over its word types, ranked by training
frequency, so that a vocabulary of any size and the sentences encoded with it are cheap numpy
slices. The tokenized form is cached on disk (``$NLP_ENVS_CACHE``, default ``~/.cache/nlp-envs``),
keyed by the data's version or content, so a new process skips the seconds of tokenizing. A cache
file that cannot be read or does not hold a well-formed corpus (truncated, corrupt, another
program's file) is reported once with a :class:`CorpusCacheWarning` naming it, and rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nlp_envs.atomic import atomic_write
from nlp_envs.data import CHITCHAT
from nlp_envs.data.files import file_cache, read_texts
from nlp_envs.data.text import Vocabulary, in_test_split, sentences

_Cached = TypeVar("_Cached")

# Bump when tokenization or splitting changes, so that old caches are not read.
FORMAT_VERSION = 1
SPLITS = ("train", "test")


class CorpusCacheWarning(UserWarning):
    """A corpus cache file was unreadable or malformed; it is rebuilt."""


class _BadCache(ValueError):
    """Why a cache file cannot be used (one line)."""


@dataclass(frozen=True)
class EncodedCorpus:
    """Tokenized sentences of a train and a test split, as ids of word types.

    Attributes:
        name: ``"chitchat"`` or the path of a user file.
        types: every word type, the training split's most frequent first (ties alphabetical),
            then the types seen only in the test split.
        train_types: how many types occur in the training split.
        ids: per split, the type ids of all its sentences, concatenated.
        lengths: per split, the length of each sentence.
    """

    name: str
    types: tuple[str, ...]
    train_types: int
    ids: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]

    def vocabulary(self, size: int) -> Vocabulary:
        """The ``size - 2`` most frequent training words plus ``<eos>`` and ``<unk>``."""
        if size < 3:
            raise ValueError(f"vocab_size must be >= 3 (<eos>, <unk> and one word), got {size}.")
        words = self.types[: min(size - 2, self.train_types)]
        return Vocabulary(words, unknown_types=self.train_types - len(words))

    def flat(self, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of all sentences of ``split`` in the vocabulary of ``size``, concatenated; lengths."""
        words = min(size - 2, self.train_types)
        type_ids = self.ids[split]
        return np.where(type_ids < words, type_ids + 2, Vocabulary.UNK_ID).astype(np.int64), self.lengths[split]

    def encode(self, split: str, size: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``width`` token ids of each sentence of ``split``: ``(n, width)`` padded with -1; lengths."""
        flat, lengths = self.flat(split, size)
        padded = np.full((len(lengths), width), -1, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        kept = columns < width
        padded[rows[kept], columns[kept]] = flat[kept]
        return padded, lengths.astype(np.int64)


def cache_dir() -> Path:
    """Where tokenized corpora are cached: ``$NLP_ENVS_CACHE`` or ``~/.cache/nlp-envs``."""
    return Path(os.environ.get("NLP_ENVS_CACHE") or Path.home() / ".cache" / "nlp-envs")


@file_cache(maxsize=4)
def load_corpus(name_or_path: str) -> EncodedCorpus:
    """Load ``"chitchat"`` or a user file (``.txt`` one text per line, ``.csv``/``.jsonl`` with ``text``).

    Chitchat is split by conversation (10% of conversations are test), a user file by line.
    """
    if name_or_path == CHITCHAT.name:
        location = CHITCHAT.location()
        key = f"chitchat-{importlib.metadata.version('chitchat-dataset')}"
        return _cached(key, name_or_path, lambda: _chitchat_sentences(location))
    path = Path(name_or_path)
    texts = read_texts(path)
    key = "file-" + hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:24]
    return _cached(key, name_or_path, lambda: _file_sentences(name_or_path, texts))


def _file_sentences(name: str, texts: list[str]) -> dict[str, list[list[str]]]:
    splits: dict[str, list[list[str]]] = {"train": [], "test": []}
    for row, text in enumerate(texts):
        splits["test" if in_test_split(f"{row}:{text}") else "train"].extend(sentences(text))
    if not splits["train"] or not splits["test"]:
        raise ValueError(
            f"Corpus {name!r} gives {len(splits['train'])} training and {len(splits['test'])} test sentences; "
            "both splits need sentences, so give a file with at least a few dozen texts."
        )
    return splits


def _chitchat_sentences(location: Path) -> dict[str, list[list[str]]]:
    with open(location / "dataset.json", encoding="utf-8") as file:
        conversations = json.load(file)
    splits: dict[str, list[list[str]]] = {"train": [], "test": []}
    for conversation_id, conversation in conversations.items():
        split = splits["test" if in_test_split(conversation_id) else "train"]
        for message in conversation["messages"]:
            for utterance in message:
                split.extend(sentences(utterance["text"]))
    return splits


def _encode(name: str, splits: dict[str, list[list[str]]]) -> EncodedCorpus:
    counts = Counter(word for sentence in splits["train"] for word in sentence)
    ranked = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    test_only = sorted({word for sentence in splits["test"] for word in sentence} - counts.keys())
    types = ranked + test_only
    index = {word: i for i, word in enumerate(types)}
    ids, lengths = {}, {}
    for split in SPLITS:
        flat = [index[word] for sentence in splits[split] for word in sentence]
        ids[split] = np.array(flat, dtype=np.int32)
        lengths[split] = np.array([len(sentence) for sentence in splits[split]], dtype=np.int32)
    return EncodedCorpus(name, tuple(types), len(ranked), ids, lengths)


def _cached(key: str, name: str, read: Callable[[], dict[str, list[list[str]]]]) -> EncodedCorpus:
    """The encoded corpus from the disk cache, or read, encode and cache it (written atomically).

    A cache file that fails to load or to validate is reported (:class:`CorpusCacheWarning`, once per
    file and process) and replaced by a rebuilt one.
    """
    path = cache_dir() / f"{key}-v{FORMAT_VERSION}.npz"
    cached = read_cached(path, lambda: _read_cache(path, name), "corpus", stacklevel=4)
    if cached is not None:
        return cached
    corpus = _encode(name, read())
    arrays: dict[str, np.ndarray] = {
        "types": np.frombuffer(json.dumps(corpus.types).encode("utf-8"), dtype=np.uint8),
        "train_types": np.array(corpus.train_types),
    }
    for split in SPLITS:
        arrays[f"{split}_ids"], arrays[f"{split}_lengths"] = corpus.ids[split], corpus.lengths[split]
    try:
        atomic_write(path, lambda handle: np.savez(handle, allow_pickle=False, **arrays))
    except OSError:
        pass  # A read-only home is no reason to fail: the corpus just is not cached.
    return corpus


_WARNED: set[str] = set()


def read_cached(path: Path, read: Callable[[], _Cached], what: str, stacklevel: int) -> _Cached | None:
    """``read()`` of cache file ``path``, or None when it is missing or unusable.

    An unusable file (``read`` raised :class:`_BadCache`) is reported once per file and process with a
    :class:`CorpusCacheWarning` naming ``what`` the cache holds, at ``stacklevel`` above the caller.
    """
    try:
        return read()
    except FileNotFoundError:
        return None
    except _BadCache as problem:
        if str(path) not in _WARNED:
            _WARNED.add(str(path))
            warnings.warn(
                f"nlp-envs: the {what} cache file {str(path)!r} is unusable ({problem}); rebuilding it.",
                CorpusCacheWarning,
                stacklevel=stacklevel + 1,
            )
        return None


def _read_cache(path: Path, name: str) -> EncodedCorpus:
    """The corpus stored at ``path``, checked array by array.

    Raises:
        FileNotFoundError: there is no cache file.
        _BadCache: the file cannot be read or does not hold a well-formed corpus.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in ("types", "train_types", *_split_keys())}
    except Exception as error:  # BadZipFile, EOFError, zlib.error, OSError, KeyError...: rebuild
        raise _BadCache(f"{type(error).__name__}: {error}") from None
    _expect_array(arrays["types"], "types", np.uint8, 1)
    try:
        types = json.loads(bytes(arrays["types"]).decode("utf-8"))
    except ValueError as error:
        raise _BadCache(f"types is not UTF-8 JSON ({error})") from None
    if not isinstance(types, list) or not types or not all(isinstance(word, str) for word in types):
        raise _BadCache("types is not a non-empty list of words")
    _expect_array(arrays["train_types"], "train_types", np.integer, 0)
    train_types = int(arrays["train_types"])
    if not 0 < train_types <= len(types):
        raise _BadCache(f"train_types={train_types} is not in [1, {len(types)}]")
    for split in SPLITS:
        ids, lengths = arrays[f"{split}_ids"], arrays[f"{split}_lengths"]
        _expect_array(ids, f"{split}_ids", np.int32, 1)
        _expect_array(lengths, f"{split}_lengths", np.int32, 1)
        limit = train_types if split == "train" else len(types)
        if len(ids) and (ids.min() < 0 or ids.max() >= limit):
            raise _BadCache(f"{split}_ids has ids outside [0, {limit})")
        if (len(lengths) and lengths.min() < 1) or int(lengths.sum(dtype=np.int64)) != len(ids):
            raise _BadCache(f"{split}_lengths does not add up to the {len(ids)} ids")
    return EncodedCorpus(
        name,
        tuple(types),
        train_types,
        {split: arrays[f"{split}_ids"] for split in SPLITS},
        {split: arrays[f"{split}_lengths"] for split in SPLITS},
    )


def _split_keys() -> list[str]:
    return [f"{split}_{part}" for split in SPLITS for part in ("ids", "lengths")]


def _expect_array(array: np.ndarray, key: str, dtype: Any, ndim: int) -> None:
    if not np.issubdtype(array.dtype, dtype) or array.ndim != ndim:
        raise _BadCache(
            f"{key} has dtype {array.dtype} and {array.ndim} dimension(s); expected {dtype.__name__}, {ndim}"
        )
