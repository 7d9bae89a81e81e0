"""Word-level text processing: tokenizer, sentence splitter, vocabulary and deterministic splits."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

EOS, UNK, BOS = "<eos>", "<unk>", "<bos>"

_SENTENCE_END = re.compile(r"[.!?]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|,")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with contractions such as ``i'm``) and commas; other symbols dropped."""
    return _WORD.findall(text.lower())


def word_spans(text: str) -> list[re.Match[str]]:
    """The words of ``text`` as :func:`tokenize` finds them, as matches in ``text.lower()`` (with offsets)."""
    return list(_WORD.finditer(text.lower()))


def sentences(text: str) -> list[list[str]]:
    """Split ``text`` at ``.``, ``!`` and ``?`` into tokenized sentences, dropping empty ones."""
    return [words for piece in _SENTENCE_END.split(text) if (words := tokenize(piece))]


def in_test_split(key: str, test_percent: int = 10) -> bool:
    """Deterministic split by a stable hash of ``key`` (CRC-32), the same on every machine."""
    return zlib.crc32(key.encode("utf-8")) % 100 < test_percent


class Vocabulary:
    """The ``size`` most frequent words of a training corpus, with ``<eos>`` = 0 and ``<unk>`` = 1.

    ``<bos>`` has id ``size``: it only appears in observations (before the first word), never as
    an action. Ties in frequency are broken alphabetically, so the vocabulary is deterministic.
    """

    EOS_ID, UNK_ID = 0, 1

    def __init__(self, words: Sequence[str], unknown_types: int = 1) -> None:
        self.words: list[str] = [EOS, UNK, *words]
        #: How many distinct training words ``<unk>`` stands for (at least 1).
        self.unknown_types = max(int(unknown_types), 1)
        self.index = {word: i for i, word in enumerate(self.words)}
        self.size = len(self.words)
        self.eos_id, self.unk_id, self.bos_id = self.EOS_ID, self.UNK_ID, self.size

    @classmethod
    def from_sentences(cls, corpus: Iterable[Sequence[str]], size: int) -> Vocabulary:
        """The top ``size - 2`` words of ``corpus`` plus ``<eos>`` and ``<unk>``."""
        if size < 3:
            raise ValueError(f"vocab_size must be >= 3 (<eos>, <unk> and one word), got {size}.")
        counts = Counter(word for sentence in corpus for word in sentence)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([word for word, _ in ranked[: size - 2]], unknown_types=len(ranked) - (size - 2))

    def encode(self, words: Sequence[str]) -> np.ndarray:
        """Token ids of ``words`` (unknown words map to ``<unk>``)."""
        unk = self.unk_id
        return np.fromiter((self.index.get(word, unk) for word in words), dtype=np.int64, count=len(words))

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids`` joined by spaces (``<bos>`` is left out)."""
        words, bos = self.words, self.bos_id
        return " ".join([words[i] for i in (ids.tolist() if isinstance(ids, np.ndarray) else ids) if i != bos])
