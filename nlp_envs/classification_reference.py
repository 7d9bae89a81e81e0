"""The reference classifier of the classification task: multinomial logistic regression on tf-idf bags of words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlp_envs.data.encoding import encoded_documents
from nlp_envs.data.files import file_cache

#: The reference classifier is fitted to at most this many training documents (evenly spaced).
CLASSIFIER_DOCUMENTS = 4000


@dataclass(frozen=True)
class Classifier:
    """Multinomial logistic regression on l2-normalised tf-idf bags of words (plain numpy).

    Attributes:
        idf: ``(vocab.size + 1,)`` inverse document frequencies of the training split (0 for padding).
        weights: ``(vocab.size + 1, labels)``; the padding row is zero.
        bias: ``(labels,)``.
    """

    idf: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def features(self, tokens: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """``(n, vocab.size + 1)`` tf-idf vectors (unit norm) of the first ``shown[i]`` words of each row."""
        size = len(self.idf)
        inside = np.arange(tokens.shape[1])[None, :] < shown[:, None]
        flat = np.arange(len(tokens))[:, None] * size + np.where(inside, tokens, size - 1)
        weighted = np.bincount(flat.ravel(), minlength=len(tokens) * size).reshape(len(tokens), size) * self.idf
        return weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-12)

    def probabilities(self, tokens: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """``(n, labels)`` label probabilities given the first ``shown[i]`` words of each row of ``tokens``."""
        return _softmax(self.features(tokens, shown) @ self.weights + self.bias)


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@file_cache(maxsize=8)
def train_classifier(
    dataset: str,
    text_column: str,
    label_column: str,
    vocab_size: int,
    max_words: int,
    l2: float = 1e-5,
    iterations: int = 500,
) -> Classifier:
    """Fit the :class:`Classifier` to the full (clipped) training texts by Nesterov gradient descent.

    ``l2`` and ``iterations`` were chosen on a held-out fifth of the training splits (the early
    stopping regularises more than ``l2``). Deterministic (full batch from zero). The weights stay
    in the span of the training vectors, ``weights = features.T @ coefficients``, so the descent
    runs on the ``(documents, labels)`` coefficients with the documents' Gram matrix: the same
    iterates, at a fraction of the cost.
    """
    train = encoded_documents(dataset, text_column, label_column, vocab_size, max_words, "train")
    pad, classes = train.vocab.size, len(train.label_names)
    chosen = np.unique(np.linspace(0, len(train.tokens) - 1, min(len(train.tokens), CLASSIFIER_DOCUMENTS)).astype(int))
    tokens, lengths, labels = train.tokens[chosen], train.lengths[chosen], train.labels[chosen]
    present = np.zeros((len(tokens), pad + 1), dtype=bool)
    present[np.arange(len(tokens))[:, None], tokens] = True
    idf = np.append(np.log((1 + len(tokens)) / (1 + present[:, :pad].sum(axis=0))) + 1.0, 0.0)
    features = Classifier(idf, np.zeros((pad + 1, classes)), np.zeros(classes)).features(tokens, lengths)
    gram = features @ features.T
    targets = np.eye(classes)[labels]
    coefficients, bias = np.zeros((len(tokens), classes)), np.zeros(classes)
    ahead_coefficients, ahead_bias = coefficients.copy(), bias.copy()
    step = 1.0 / (0.5 + l2)  # unit-norm rows: the mean cross-entropy plus l2 is (0.5 + l2)-smooth
    for iteration in range(iterations):
        error = (_softmax(gram @ ahead_coefficients + ahead_bias) - targets) / len(targets)
        new_coefficients = ahead_coefficients - step * (error + l2 * ahead_coefficients)
        new_bias = ahead_bias - step * error.sum(axis=0)
        momentum = iteration / (iteration + 3)
        ahead_coefficients = new_coefficients + momentum * (new_coefficients - coefficients)
        ahead_bias = new_bias + momentum * (new_bias - bias)
        coefficients, bias = new_coefficients, new_bias
    return Classifier(idf, features.T @ coefficients, bias)
