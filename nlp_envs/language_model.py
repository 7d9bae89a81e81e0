"""Reference models estimated from a corpus: a smoothed bigram language model and word vectors.

Both are plain numpy, built in seconds from the training split, and cached per process, so an env
never downloads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nlp_envs.data.corpus import SentenceCorpus, load_corpus
from nlp_envs.data.text import Vocabulary

KNESER_NEY_DISCOUNT = 0.75


@dataclass(frozen=True)
class BigramModel:
    """An interpolated Kneser-Ney bigram model over a vocabulary.

    Bigrams are counted once per sentence, so one message that repeats a word forty times
    ("ink ink ink ...", which the chitchat data has) does not teach the model a loop.

    Attributes:
        vocab: the vocabulary (``<eos>`` = 0, ``<unk>`` = 1, ``<bos>`` = ``vocab.size``).
        log_probs: ``(vocab.size + 1, vocab.size)`` float64; row ``c`` holds
            ``log p(w | c)`` for every word ``w``, row ``vocab.bos_id`` the sentence starts. Every
            entry is finite: the continuation distribution is mixed with a uniform one. The
            ``<unk>`` column is the probability of one unknown word: the class's probability
            shared among the ``vocab.unknown_types`` words it stands for, so that ``<unk>`` is no
            shortcut to a high score.
    """

    vocab: Vocabulary
    log_probs: np.ndarray


def bigram_counts(sentences: np.ndarray, lengths: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """``(V + 1, V)`` counts of (previous, next) in ``<bos> sentence <eos>``, once per sentence."""
    size = vocab.size
    counts = np.zeros((size + 1) * size, dtype=np.int64)
    width = sentences.shape[1]
    padded = np.full((len(sentences), width + 2), -1, dtype=np.int64)
    padded[:, 0] = vocab.bos_id
    padded[:, 1 : width + 1] = sentences
    padded[np.arange(len(sentences)), lengths + 1] = vocab.eos_id
    previous, following = padded[:, :-1], padded[:, 1:]
    valid = (previous >= 0) & (following >= 0)
    sentence = np.broadcast_to(np.arange(len(sentences))[:, None], previous.shape)
    pair = previous[valid] * size + following[valid]
    distinct = np.unique(sentence[valid] * ((size + 1) * size) + pair) % ((size + 1) * size)
    np.add.at(counts, distinct, 1)
    return counts.reshape(size + 1, size)


def kneser_ney(counts: np.ndarray, discount: float = KNESER_NEY_DISCOUNT) -> np.ndarray:
    """Log-probabilities of an interpolated Kneser-Ney bigram model from ``(C, V)`` bigram counts."""
    size = counts.shape[1]
    continuation = (counts > 0).sum(axis=0).astype(np.float64)
    # A word never seen after anything would get probability 0; mixing in a uniform share keeps
    # every reward finite.
    p_continuation = 0.999 * continuation / max(continuation.sum(), 1.0) + 0.001 / size
    context_totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    distinct_followers = (counts > 0).sum(axis=1, keepdims=True)
    seen = context_totals > 0
    safe_totals = np.where(seen, context_totals, 1.0)
    discounted = np.maximum(counts - discount, 0.0) / safe_totals
    backoff_weight = np.where(seen, discount * distinct_followers / safe_totals, 1.0)
    return np.log(discounted + backoff_weight * p_continuation[None, :])


def encode_sentences(corpus: tuple[tuple[str, ...], ...], vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """A ``(n, longest)`` id array padded with -1, and the lengths, of tokenized sentences."""
    lengths = np.fromiter((len(sentence) for sentence in corpus), dtype=np.int64, count=len(corpus))
    ids = np.full((len(corpus), max(int(lengths.max(initial=0)), 1)), -1, dtype=np.int64)
    flat = vocab.encode([word for sentence in corpus for word in sentence])
    rows = np.repeat(np.arange(len(corpus)), lengths)
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ids[rows, columns] = flat
    return ids, lengths


@lru_cache(maxsize=8)
def training_ids(corpus_name: str, vocab_size: int) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """The vocabulary of a corpus's training split and that split encoded with it (cached)."""
    corpus: SentenceCorpus = load_corpus(corpus_name)
    vocab = Vocabulary.from_sentences(corpus.train, vocab_size)
    return (vocab, *encode_sentences(corpus.train, vocab))


@lru_cache(maxsize=8)
def bigram_model(corpus_name: str, vocab_size: int) -> BigramModel:
    """The bigram model of a corpus's training split over its top ``vocab_size`` words (cached)."""
    vocab, ids, lengths = training_ids(corpus_name, vocab_size)
    log_probs = kneser_ney(bigram_counts(ids, lengths, vocab))
    log_probs[:, vocab.unk_id] -= np.log(vocab.unknown_types)
    return BigramModel(vocab, log_probs)


@lru_cache(maxsize=8)
def word_vectors(corpus_name: str, vocab_size: int, dim: int, window: int = 2) -> np.ndarray:
    """Unit-norm word vectors from PPMI + truncated SVD of windowed co-occurrences (cached).

    Returns:
        ``(vocab_size + 1, dim)`` float32; the ``<bos>`` row is zero.
    """
    vocab, ids, _ = training_ids(corpus_name, vocab_size)
    size = vocab.size
    flat_counts = np.zeros(size * size, dtype=np.float64)
    for offset in range(1, window + 1):
        left, right = ids[:, :-offset].ravel(), ids[:, offset:].ravel()
        valid = (left >= 0) & (right >= 0)
        np.add.at(flat_counts, left[valid] * size + right[valid], 1.0)
    cooccurrence = flat_counts.reshape(size, size)
    cooccurrence += cooccurrence.T
    total = cooccurrence.sum()
    row = cooccurrence.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(cooccurrence * total / (row * row.T))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    dim = min(dim, size)
    left_vectors, singular_values = _truncated_svd(ppmi, dim, np.random.default_rng(0))
    vectors = left_vectors * np.sqrt(singular_values)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.where(norms > 0, vectors / np.where(norms > 0, norms, 1.0), 0.0)
    return np.vstack([vectors, np.zeros((1, dim))]).astype(np.float32)


def _truncated_svd(matrix: np.ndarray, rank: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The top ``rank`` left singular vectors and values (randomised range finder, 4 power steps)."""
    sketch = matrix @ rng.standard_normal((matrix.shape[1], min(rank + 10, matrix.shape[1])))
    for _ in range(4):
        sketch, _ = np.linalg.qr(sketch)
        sketch = matrix @ (matrix.T @ sketch)
    basis, _ = np.linalg.qr(sketch)
    small_left, singular_values, _ = np.linalg.svd(basis.T @ matrix, full_matrices=False)
    left = basis @ small_left[:, :rank]
    # Fix each vector's sign so that results do not depend on the LAPACK build.
    left *= np.where(left[np.abs(left).argmax(axis=0), np.arange(left.shape[1])] < 0, -1.0, 1.0)
    return left, singular_values[:rank]
