"""Reference models estimated from a corpus: a smoothed bigram language model and word vectors.

Both are plain numpy, built in seconds from the training split, and cached per process, so an env
never downloads a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlp_envs.data.corpus import load_corpus
from nlp_envs.data.files import file_cache
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


def bigram_counts(ids: np.ndarray, lengths: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """``(V + 1, V)`` counts of (previous, next) in ``<bos> sentence <eos>``, once per sentence.

    Args:
        ids: the token ids of all sentences, concatenated.
        lengths: the length of each sentence.
        vocab: their vocabulary.
    """
    size = vocab.size
    framed_lengths = lengths + 2
    starts = np.cumsum(framed_lengths) - framed_lengths
    framed = np.empty(int(framed_lengths.sum()), dtype=np.int64)
    framed[starts] = vocab.bos_id
    framed[starts + framed_lengths - 1] = vocab.eos_id
    inside = np.ones(len(framed), dtype=bool)
    inside[starts] = inside[starts + framed_lengths - 1] = False
    framed[inside] = ids
    sentence = np.repeat(np.arange(len(lengths)), framed_lengths)[:-1]
    previous, following = framed[:-1], framed[1:]
    valid = previous != vocab.eos_id  # not a pair across two sentences
    cells = (size + 1) * size
    codes = np.sort(sentence[valid] * cells + previous[valid] * size + following[valid])
    distinct = codes[np.concatenate([[True], codes[1:] != codes[:-1]])] % cells
    return np.bincount(distinct, minlength=cells).reshape(size + 1, size)


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


def bigram_model_bytes(words: int, train_tokens: int) -> int:
    """The peak memory of building :func:`bigram_model` over ``words`` ids (``<eos>``, ``<unk>`` included).

    The counts and the Kneser-Ney temporaries are ``(words + 1, words)`` tables of 8 bytes: about
    four at once (4.07 measured with ``tracemalloc`` at 6,000 words on chitchat), plus about 48 bytes
    per training token for the bigram codes (measured at 1,000 words).
    """
    return int(8 * (words + 1) * words * 4.25 + 48 * train_tokens)


def word_vectors_bytes(words: int, train_tokens: int) -> int:
    """The peak memory of :func:`word_vectors` over ``words`` ids: co-occurrence, PMI and PPMI tables.

    About 3.2 ``(words, words)`` tables of 8 bytes above what is already held (5.27 tables of peak
    with the bigram model's two resident tables, measured at 6,000 words), plus the token pairs.
    """
    return int(8 * words * words * 3.5 + 48 * train_tokens)


@file_cache(maxsize=8)
def training_ids(corpus_name: str, vocab_size: int) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """The vocabulary of a corpus's training split and that split encoded with it (cached)."""
    corpus = load_corpus(corpus_name)
    return (corpus.vocabulary(vocab_size), *corpus.flat("train", vocab_size))


@file_cache(maxsize=8)
def bigram_model(corpus_name: str, vocab_size: int) -> BigramModel:
    """The bigram model of a corpus's training split over its top ``vocab_size`` words (cached)."""
    vocab, ids, lengths = training_ids(corpus_name, vocab_size)
    log_probs = kneser_ney(bigram_counts(ids, lengths, vocab))
    log_probs[:, vocab.unk_id] -= np.log(vocab.unknown_types)
    return BigramModel(vocab, log_probs)


@file_cache(maxsize=8)
def word_vectors(corpus_name: str, vocab_size: int, dim: int, window: int = 2) -> np.ndarray:
    """Word vectors of a corpus's training split: :func:`ppmi_vectors` (cached).

    Returns:
        ``(vocab_size + 1, dim)`` float32; the ``<bos>`` row is zero.
    """
    vocab, ids, lengths = training_ids(corpus_name, vocab_size)
    return ppmi_vectors(ids, lengths, vocab.size, dim, window)


def ppmi_vectors(ids: np.ndarray, lengths: np.ndarray, size: int, dim: int, window: int = 2) -> np.ndarray:
    """Unit-norm word vectors from PPMI + truncated SVD of co-occurrences within ``window`` words.

    Args:
        ids: token ids in ``[0, size)`` of all texts, concatenated.
        lengths: the length of each text (pairs never cross two texts).
        size: the vocabulary size.
        dim: the vector size (at most ``size``).
        window: the largest distance between two co-occurring words.

    Returns:
        ``(size + 1, dim)`` float32; the last row (padding, ``<bos>``) is zero. Deterministic.
    """
    text = np.repeat(np.arange(len(lengths)), lengths)
    flat_counts = np.zeros(size * size, dtype=np.float64)
    for offset in range(1, window + 1):
        same_text = text[:-offset] == text[offset:]
        flat_counts += np.bincount(ids[:-offset][same_text] * size + ids[offset:][same_text], minlength=size * size)
    cooccurrence = flat_counts.reshape(size, size)
    cooccurrence += cooccurrence.T
    row = cooccurrence.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(cooccurrence * cooccurrence.sum() / (row * row.T))
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
