"""Documents encoded for the classification task: word ids, chunks, word vectors and observation tables.

Every table is cached per process and keyed by the data source ``(dataset, text_column,
label_column, vocab_size)`` and the clipping and chunking settings; the arrays are read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlp_envs.data.documents import load_documents
from nlp_envs.data.files import file_cache
from nlp_envs.data.text import Vocabulary, word_spans
from nlp_envs.language_model import ppmi_vectors


@dataclass(frozen=True)
class EncodedDocuments:
    """One split of a dataset, tokenized, clipped to ``max_words`` words and encoded (read-only arrays).

    Attributes:
        vocab: the vocabulary of the training split (``<unk>`` = 1; ``vocab.size`` pads).
        label_names: the label names; label ids index this tuple.
        texts: the documents as shown to people (the original text; lower-cased only where
            lower-casing would change its length).
        ends: per document, the character offset in its text where each kept word ends.
        tokens: ``(documents, max_words)`` word ids, padded with ``vocab.size``.
        lengths: the number of words of each document (at most ``max_words``, at least 1).
        labels: the label id of each document.
    """

    vocab: Vocabulary
    label_names: tuple[str, ...]
    texts: tuple[str, ...]
    ends: tuple[np.ndarray, ...]
    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


def _words(text: str) -> tuple[list[str], list[int], str]:
    """The words of ``text`` (as :func:`nlp_envs.data.text.tokenize` finds them), their end offsets, the shown text."""
    lower = text.lower()
    matches = word_spans(text)
    return (
        [match.group() for match in matches],
        [match.end() for match in matches],
        (text if len(lower) == len(text) else lower),
    )


@file_cache(maxsize=8)
def _vocabulary(dataset: str, text_column: str, label_column: str, vocab_size: int) -> Vocabulary:
    documents = load_documents(dataset, text_column, label_column)
    return Vocabulary.from_sentences((_words(text)[0] for text in documents.train_texts), vocab_size)


def table_bytes(
    dataset: str,
    text_column: str,
    label_column: str,
    vocab_size: int,
    max_words: int,
    split: str,
    chunk_words: int,
    dim: int | None,
) -> tuple[dict[str, float], int, int]:
    """The memory the tables of this module take for one configuration, by table, before building them.

    Reads the documents and the vocabulary (both cached, and small next to the tables); the
    tables grow with ``documents x max_words`` (the clipped word ids, the chunk table and its
    padded copy) and, with ``dim`` (the embedding observation), with ``words x dim`` (the word
    vectors and their co-occurrence matrix) and ``chunks x dim`` (the observation table and the
    float64 sums it is made from).

    Returns:
        ``(parts, words, labels)``: bytes per table name (for :func:`nlp_envs.resources.check_fits`),
        the vocabulary's size with its padding id, and the number of labels.
    """
    loaded = load_documents(dataset, text_column, label_column)
    texts, _ = loaded.split(split)
    words = _vocabulary(dataset, text_column, label_column, vocab_size).size + 1
    documents = len(texts)
    max_chunks = -(-max_words // chunk_words)
    parts = {
        "clipped word ids": 8.0 * documents * max_words,
        "chunk tables": 2 * 8.0 * documents * max_chunks * chunk_words,
    }
    if dim is not None:
        dim = min(dim, words)
        parts["word vectors"] = 8.0 * words * words + 8.0 * words * dim
        parts["observation table"] = 4 * 8.0 * documents * max_chunks * (dim + 2)
    return parts, words, len(loaded.labels)


@file_cache(maxsize=16)
def encoded_documents(
    dataset: str, text_column: str, label_column: str, vocab_size: int, max_words: int, split: str
) -> EncodedDocuments:
    """The ``split`` of ``dataset`` encoded with the training split's vocabulary (cached per process).

    Documents without a single word (a review of only "!!!") are left out.

    Raises:
        ValueError: the split has no document (a user file with too few documents per label).
    """
    documents = load_documents(dataset, text_column, label_column)
    vocab = _vocabulary(dataset, text_column, label_column, vocab_size)
    texts, labels = documents.split(split)
    kept_texts, kept_ends, kept_labels, rows = [], [], [], []
    for text, label in zip(texts, labels, strict=True):
        words, ends, shown = _words(text)
        if words:
            rows.append(vocab.encode(words[:max_words]))
            kept_ends.append(np.array(ends[:max_words], dtype=np.int64))
            kept_texts.append(shown)
            kept_labels.append(label)
    if not rows:
        raise ValueError(f"Dataset {dataset!r} has no {split} documents; give more documents per label.")
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    tokens = np.full((len(rows), max_words), vocab.size, dtype=np.int64)
    tokens[np.arange(max_words)[None, :] < lengths[:, None]] = np.concatenate(rows)
    encoded = EncodedDocuments(
        vocab, documents.labels, tuple(kept_texts), tuple(kept_ends), tokens, lengths, np.array(kept_labels)
    )
    for array in (encoded.tokens, encoded.lengths, encoded.labels, *encoded.ends):
        array.flags.writeable = False
    return encoded


@file_cache(maxsize=8)
def word_vectors(dataset: str, text_column: str, label_column: str, vocab_size: int, dim: int) -> np.ndarray:
    """Word vectors of the training split's documents: :func:`nlp_envs.language_model.ppmi_vectors`.

    Returns:
        ``(vocab.size + 1, dim)`` float32; the padding row (``vocab.size``) is zero.
    """
    vocab = _vocabulary(dataset, text_column, label_column, vocab_size)
    rows = [vocab.encode(_words(text)[0]) for text in load_documents(dataset, text_column, label_column).train_texts]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    table = ppmi_vectors(np.concatenate(rows), lengths, vocab.size, dim)
    table.flags.writeable = False
    return table


@file_cache(maxsize=16)
def chunk_tables(
    dataset: str, text_column: str, label_column: str, vocab_size: int, max_words: int, split: str, chunk_words: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each document's first chunk row and number of chunks, and the ``(rows, chunk_words)`` chunk word ids."""
    documents = encoded_documents(dataset, text_column, label_column, vocab_size, max_words, split)
    chunks = -(-documents.lengths // chunk_words)
    offsets = np.cumsum(chunks) - chunks
    max_chunks = -(-max_words // chunk_words)
    padded = np.full((len(chunks), max_chunks * chunk_words), documents.vocab.size, dtype=np.int64)
    padded[:, :max_words] = documents.tokens
    inside = np.arange(max_chunks)[None, :] < chunks[:, None]
    tokens = padded.reshape(len(chunks), max_chunks, chunk_words)[inside]
    for array in (offsets, chunks, tokens):
        array.flags.writeable = False
    return offsets, chunks, tokens


@file_cache(maxsize=16)
def embedding_table(
    dataset: str,
    text_column: str,
    label_column: str,
    vocab_size: int,
    max_words: int,
    split: str,
    chunk_words: int,
    dim: int,
) -> np.ndarray:
    """The embedding observation of every (document, chunks shown): mean vector, fraction read, progress."""
    documents = encoded_documents(dataset, text_column, label_column, vocab_size, max_words, split)
    offsets, chunks, tokens = chunk_tables(
        dataset, text_column, label_column, vocab_size, max_words, split, chunk_words
    )
    vectors = word_vectors(dataset, text_column, label_column, vocab_size, dim).astype(np.float64)
    # Sum each chunk's word vectors one dimension at a time: memory in words, not words x dim.
    row_of_word = np.repeat(np.arange(len(tokens)), tokens.shape[1])
    flat = tokens.ravel()
    chunk_sums = np.stack(
        [np.bincount(row_of_word, weights=column[flat], minlength=len(tokens)) for column in vectors.T], axis=1
    )
    sums = np.cumsum(chunk_sums, axis=0)
    starts = np.concatenate([np.zeros((1, sums.shape[1])), sums])[offsets]
    document = np.repeat(np.arange(len(chunks)), chunks)
    chunk = np.arange(len(tokens)) - offsets[document]
    words = np.minimum((chunk + 1) * chunk_words, documents.lengths[document])
    max_chunks = -(-max_words // chunk_words)
    table = np.concatenate(
        [
            (sums - starts[document]) / words[:, None],
            (words / documents.lengths[document])[:, None],
            ((chunk + 1) / max_chunks)[:, None],
        ],
        axis=1,
    ).astype(np.float32)
    np.clip(table, -1.0, 1.0, out=table)
    table.flags.writeable = False
    return table
