"""NextWord: writing the continuation of a real sentence, one word per step."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces

from nlp_envs.core import (
    CoreEnv,
    CoreVectorEnv,
    TaskCore,
    check_choice,
    check_int,
    check_reward,
    random_integers,
    slot_index,
)
from nlp_envs.data import CHITCHAT
from nlp_envs.data.corpus import load_corpus
from nlp_envs.data.files import TABLE_SUFFIXES, file_cache, file_stamp
from nlp_envs.data.text import Vocabulary
from nlp_envs.language_model import bigram_model, bigram_model_bytes, word_vectors, word_vectors_bytes
from nlp_envs.policies import random_policy
from nlp_envs.resources import check_fits, format_bytes

REWARDS = ("lm", "reference")
OBSERVATIONS = ("tokens", "embedding")
# Hard upper bounds (documented in NextWordEnv's Arguments), besides the memory estimate.
MAX_VOCAB_SIZE = 10_000_000  # more word types than any corpus has: the vocabulary is capped at them anyway
MAX_CONTEXT = 1_000  # context and prompt_words: chat sentences are far shorter; more is only <bos> padding
MAX_WORDS = 10_000  # max_words: no sentence is that long; more is only memory
MAX_EMBEDDING_DIM = 4_096  # word vectors are cut at the vocabulary size; more only asks a larger SVD


class NextWordCore(TaskCore):
    """Batched NextWord dynamics; see :class:`NextWordEnv` for the documentation."""

    env_id = "nlp_envs/NextWord-v0"
    metric_names = ("words", "reference_matches", "mean_log_prob")

    def __init__(
        self,
        num_envs: int,
        *,
        corpus: str = "chitchat",
        vocab_size: int = 2000,
        context: int = 3,
        prompt_words: int = 3,
        max_words: int = 20,
        min_words: int = 4,
        early_end_penalty: float = 10.0,
        reward: str = "lm",
        beta: float = 0.0,
        observation: str = "tokens",
        embedding_dim: int = 32,
        split: str = "test",
    ) -> None:
        super().__init__(num_envs)
        env = self.env_id
        check_choice(env, "reward", reward, REWARDS)
        check_choice(env, "observation", observation, OBSERVATIONS)
        check_choice(env, "split", split, ("train", "test"))
        corpus_suffixes = (".txt", *TABLE_SUFFIXES)
        if not isinstance(corpus, (str, Path)) or (
            str(corpus) != CHITCHAT.name and Path(corpus).suffix not in corpus_suffixes
        ):
            raise ValueError(
                f"{env}: corpus={corpus!r} is neither {CHITCHAT.name!r} nor the path of a file with suffix "
                f"{corpus_suffixes}; pass one of them."
            )
        vocab_size = check_int(env, "vocab_size", vocab_size, 3, MAX_VOCAB_SIZE)
        context = check_int(env, "context", context, 1, MAX_CONTEXT)
        prompt_words = check_int(env, "prompt_words", prompt_words, 1, MAX_CONTEXT)
        max_words = check_int(env, "max_words", max_words, 1, MAX_WORDS)
        embedding_dim = check_int(env, "embedding_dim", embedding_dim, 1, MAX_EMBEDDING_DIM)
        beta = check_reward(env, "beta", beta)
        early_end_penalty = check_reward(env, "early_end_penalty", early_end_penalty)
        min_words = check_int(
            env, "min_words", min_words, 0, max_words, fix=f"pass at most max_words={max_words}, or raise max_words"
        )
        tables = _check_memory(
            env, num_envs, corpus, vocab_size, context, prompt_words, max_words, observation, embedding_dim
        )
        self.model = bigram_model(corpus, vocab_size)
        self.vocab = self.model.vocab
        self.corpus, self.reward, self.beta, self.observation = corpus, reward, float(beta), observation
        self.context, self.prompt_words, self.max_words = context, prompt_words, max_words
        self.max_steps = max_words
        self.min_words, self.early_end_penalty = min_words, float(early_end_penalty)
        self.early_end_costs = np.where(np.arange(max_words + 1) < min_words, self.early_end_penalty, 0.0)
        size = self.vocab.size
        self.reward_table = _reward_table(corpus, vocab_size, reward, self.beta)
        self.prompts, self.references = _prompts(corpus, vocab_size, prompt_words, max_words, split)
        self.match_targets = _match_targets(corpus, vocab_size, prompt_words, max_words, split)
        self._positions = np.arange(max_words)[None, :]
        padded = np.full((len(self.prompts), max(context, prompt_words)), self.vocab.bos_id, dtype=np.int64)
        padded[:, padded.shape[1] - prompt_words :] = self.prompts
        self.prompt_windows = padded[:, padded.shape[1] - context :]

        self.single_action_space = spaces.Discrete(size)
        token_space = spaces.MultiDiscrete([size + 1] * context + [max_words + 1])
        self.afterstate_space = token_space
        if observation == "tokens":
            self.single_observation_space = token_space
        else:
            self.vectors = word_vectors(corpus, vocab_size, embedding_dim)
            self.single_observation_space = spaces.Box(
                -1.0, 1.0, shape=(context * self.vectors.shape[1] + 1,), dtype=np.float32
            )
        _BUILT.add(tables)

        self.window = np.full((num_envs, context), self.vocab.bos_id, dtype=np.int64)
        self.written = np.zeros((num_envs, max_words), dtype=np.int64)
        # Words written, at most max_words: a step after the end writes over the last word.
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.sentence = np.zeros(num_envs, dtype=np.int64)
        # A step writes one word per slot through a flat view of ``written`` (the same array, not
        # other state): a 1-d scatter costs a fraction of 2-d fancy indexing.
        self._written_flat = self.written.reshape(-1)
        self._written_rows = np.arange(num_envs) * max_words
        # By words written: the position the next word goes to (after the end, the last one again),
        # the words written after it, and what the mean log-probability divides by. Lookups in
        # these replace ufuncs, which cost several lookups each on a few slots.
        written_counts = np.arange(max_words + 1)
        self._write_positions = np.minimum(written_counts, max_words - 1)
        self._next_steps = np.minimum(written_counts + 1, max_words)
        self._divisors = np.maximum(written_counts, 1)
        self._is_eos = np.arange(size) == self.vocab.eos_id  # by word
        # By whether the last word is <eos> (0 or 1, by word) and words written: the words without that <eos>.
        self._is_eos_int = self._is_eos.astype(np.int64)
        self._words_without_eos = np.stack([written_counts, written_counts - (written_counts > 0)])
        # The prompts' last words, as (sentences, 1) columns: what the first written word follows.
        self._prompt_ends = self.prompts[:, -1:].copy()
        self._prompt_texts: dict[int, str] = {}  # decoded prompts, by sentence

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Draw a held-out sentence per slot; its first ``prompt_words`` words are the prompt."""
        self.begin_drawn(slots, self.draw_begins(keys))

    def draw_begins(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each key's held-out sentence and its prompt's window."""
        sentence = random_integers(keys, len(self.prompts))
        return sentence, self.prompt_windows[sentence]

    def begin_drawn(self, slots: np.ndarray, drawn: tuple[np.ndarray, np.ndarray]) -> None:
        """Start each drawn sentence (row i) in slots[i], at step 0."""
        at = slot_index(slots)
        self.sentence[at], self.window[at] = drawn
        self.steps[at] = 0

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append each slot's word; reward it; terminate on ``<eos>``."""
        # Lookups in small tables and new arrays: on a few slots they cost a fraction of comparisons
        # with Python numbers and of in-place ufuncs.
        rewards = self.reward_table[self.window[:, -1], actions]
        ending = self._is_eos[actions]
        steps = self.steps
        position = self._write_positions[steps]
        if self.reward == "reference":
            rewards = rewards + (actions == self.match_targets[self.sentence, position])
        else:
            rewards = rewards - self.early_end_costs[steps] * ending
        self._written_flat[self._written_rows + position] = actions
        self.window[:, :-1] = self.window[:, 1:]
        self.window[:, -1] = actions
        self.steps[...] = self._next_steps[steps]  # an Ellipsis costs less than a full slice
        return rewards, ending

    def observe(self) -> np.ndarray:
        """Token ids of the last ``context`` words and the number of words written (or dense)."""
        return self._observation(self.window, self.steps)

    def observe_slots(self, slots: np.ndarray) -> np.ndarray:
        """:meth:`observe` of ``slots`` alone."""
        return self._observation(self.window[slots], self.steps[slots])

    def _observation(self, window: np.ndarray, steps: np.ndarray) -> np.ndarray:
        if self.observation == "tokens":
            # Two writes into a new array cost less than np.concatenate's Python-level dispatch.
            tokens = np.empty((len(window), self.context + 1), dtype=np.int64)
            tokens[:, :-1] = window
            tokens[:, -1] = steps
            return tokens
        return self._embed(window, steps)

    def _embed(self, window: np.ndarray, steps: np.ndarray) -> np.ndarray:
        vectors = self.vectors[window].reshape(len(window), -1)
        return np.concatenate([vectors, (steps / self.max_words)[:, None]], axis=1, dtype=np.float32)

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The observation after appending each word: deterministic, so exactly the next observation."""
        if self.observation == "tokens":
            window = np.concatenate([observations[:, 1 : self.context], actions[:, None]], axis=1)
            return np.concatenate([window, np.minimum(observations[:, -1:] + 1, self.max_words)], axis=1)
        dim = self.vectors.shape[1]
        shifted = np.concatenate([observations[:, dim : self.context * dim], self.vectors[actions]], axis=1)
        steps = np.minimum(observations[:, -1:] + 1.0 / self.max_words, 1.0)
        return np.concatenate([shifted, steps], axis=1, dtype=np.float32)

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Words written (no ``<eos>``), tokens equal to the reference (its ``<eos>`` too), mean ``log p_ref``."""
        # One slot (the single env) is read through a slice: views of its rows, where fancy indexing
        # would gather copies (only new arrays are returned).
        at = slot_index(slots)
        steps = self.steps[at]
        written = self.written[at]
        sentence = self.sentence[at]
        inside = self._positions < steps[:, None]
        previous = np.concatenate([self._prompt_ends[sentence], written[:, :-1]], axis=1)
        log_probs = np.where(inside, self.model.log_probs[previous, written], 0.0)
        matches = inside & (written == self.match_targets[sentence])
        last = self.window[at, -1]  # the last word written (also after the end, where it is written again)
        return {
            "words": self._words_without_eos[self._is_eos_int[last], steps],
            "reference_matches": matches.sum(axis=1),
            "mean_log_prob": log_probs.sum(axis=1) / self._divisors[steps],
        }

    def text(self, slot: int) -> str:
        """``prompt >> written words``."""
        sentence = self.sentence.item(slot)
        prompt = self._prompt_texts.get(sentence)
        if prompt is None:  # the single env asks for this text at every step: each prompt is decoded once
            prompt = self._prompt_texts[sentence] = self.vocab.decode(self.prompts[sentence])
        written = self.vocab.decode(self.written[slot, : self.steps.item(slot)])
        return f"{prompt} >> {written}".rstrip()

    def optimal_actions(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact optimum of the ``"lm"`` reward by dynamic programming over (steps, previous word).

        Returns:
            ``(actions, values)``: ``actions[t, c]`` is an optimal word after ``t`` words with
            previous word ``c``, and ``values[t, c]`` the optimal return from there.
        """
        if self.reward != "lm":
            raise ValueError(f"{self.env_id}: the dynamic-programming optimum exists for reward='lm' only.")
        return _optimal_actions(
            self.corpus, self.vocab.size, self.beta, self.min_words, self.early_end_penalty, horizon
        )


@file_cache(maxsize=8)
def _prompts(
    corpus: str, vocab_size: int, prompt_words: int, max_words: int, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Prompts (bos-padded to ``prompt_words``) and their reference continuations (eos, then -1)."""
    all_ids, all_lengths = load_corpus(corpus).encode(split, vocab_size, prompt_words + max_words)
    long_enough = all_lengths > prompt_words
    if not long_enough.any():
        raise ValueError(f"The {split} split of {corpus!r} has no sentence longer than prompt_words={prompt_words}.")
    ids, lengths = all_ids[long_enough], all_lengths[long_enough]
    prompts, references = ids[:, :prompt_words], ids[:, prompt_words:].copy()
    end = lengths - prompt_words
    ends_inside = end < max_words
    references[np.flatnonzero(ends_inside), end[ends_inside]] = Vocabulary.EOS_ID
    return prompts, references


@file_cache(maxsize=8)
def _match_targets(corpus: str, vocab_size: int, prompt_words: int, max_words: int, split: str) -> np.ndarray:
    """The references as the words a written word can match: ``<unk>`` never matches, so it becomes -2 (no word)."""
    references = _prompts(corpus, vocab_size, prompt_words, max_words, split)[1]
    targets = np.where(references == Vocabulary.UNK_ID, -2, references)
    targets.flags.writeable = False
    return targets


@file_cache(maxsize=16)
def _reward_table(corpus: str, vocab_size: int, reward: str, beta: float) -> np.ndarray:
    """Reward per (previous word, word), without the reference match; shared by equal envs."""
    log_probs = bigram_model(corpus, vocab_size).log_probs
    table = (1.0 + beta) * log_probs if reward == "lm" else beta * log_probs
    table.flags.writeable = False
    return table


@file_cache(maxsize=16)
def _optimal_actions(
    corpus: str, vocab_size: int, beta: float, min_words: int, early_end_penalty: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    reward_table = _reward_table(corpus, vocab_size, "lm", beta)
    eos = bigram_model(corpus, vocab_size).vocab.eos_id
    actions = np.zeros((horizon, reward_table.shape[0]), dtype=np.int64)
    values = np.zeros((horizon + 1, reward_table.shape[0]), dtype=np.float64)
    for t in range(horizon - 1, -1, -1):
        # After word w the next context is w; <eos> ends the episode (no future value).
        future = values[t + 1, : reward_table.shape[1]].copy()
        future[eos] = 0.0
        q = reward_table + future[None, :]
        if t < min_words:
            q[:, eos] -= early_end_penalty
        actions[t] = q.argmax(axis=1)
        values[t] = q.max(axis=1)
    return actions, values[:horizon]


#: The shared tables already built in this process, by (corpus, its file stamp, words, embedding_dim or
#: 0): their memory is held, not needed again. (A table dropped from a full cache is rebuilt unchecked.)
_BUILT: set[tuple[str, tuple[int, int, int] | None, int, int]] = set()


def _check_memory(
    env: str,
    num_envs: int,
    corpus: str,
    vocab_size: int,
    context: int,
    prompt_words: int,
    max_words: int,
    observation: str,
    embedding_dim: int,
) -> tuple[str, tuple[int, int, int] | None, int, int]:
    """Refuse, before allocating, a configuration whose tables and arrays cannot fit in memory.

    Memory is quadratic in the vocabulary: the bigram model and the reward table are
    ``(V + 1, V)`` float64 tables, where ``V`` is ``vocab_size`` capped by the corpus's training
    word types; the oracle's dynamic programme is ``(max_words + 1, V + 1)``; the held-out sentences
    and the episode slots are linear in ``prompt_words + max_words`` and ``context``. The message
    names ``env``, the id being made.

    Returns:
        The key of its shared tables, for :data:`_BUILT` once they are built.

    Raises:
        nlp_envs.resources.ResourceLimitError: the estimate exceeds the memory limit.
    """
    encoded = load_corpus(corpus)
    words = min(vocab_size - 2, encoded.train_types) + 2
    train_tokens, test_tokens = len(encoded.ids["train"]), len(encoded.ids["test"])
    sentences = len(encoded.lengths["test"])
    key = (corpus, file_stamp(corpus), words, embedding_dim if observation == "embedding" else 0)
    parts = {
        # Episode slots: window, written words (and their row offsets), observations (and their copies in a step).
        "episode slots": 3 * 8 * num_envs * (context + max_words + 2),
        # Held-out sentences padded to prompt_words + max_words, prompts, references and the words they
        # match; windows; the prompts' last words.
        "held-out sentences": 8 * (2 * sentences * (prompt_words + max_words) + 2 * sentences * context)
        + 8 * sentences * (max_words + 1)
        + 40 * test_tokens,
        # The tables by words written (positions, next counts, divisors, words without <eos>) and their sources.
        "tables by words written": 8 * 8 * (max_words + 1),
        "observation space": 16 * context,
    }
    if key not in _BUILT:
        # The phases do not overlap: building the bigram model, then the reward table and the
        # oracle's table beside it, then the word vectors beside both resident tables.
        table = 8 * (words + 1) * words
        phases = [bigram_model_bytes(words, train_tokens), 3 * table + 16 * (max_words + 1) * (words + 1)]
        if observation == "embedding":
            phases.append(2 * table + word_vectors_bytes(words, train_tokens))
        parts["vocabulary tables"] = max(phases)
    largest = max(parts, key=parts.__getitem__)
    check_fits(
        f"{env} with vocab_size={vocab_size} ({words:,} words in {corpus!r}), context={context}, "
        f"prompt_words={prompt_words}, max_words={max_words}, num_envs={num_envs} "
        f"(most for the {largest}: {format_bytes(parts[largest])})",
        sum(parts.values()),
    )
    return key


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """The best policy there is, reading the env's state.

    With ``reward="lm"`` it is the exact optimum: dynamic programming over (words written, previous
    word) with the env's own bigram model; the state it reads is the same as the token observation.
    With ``reward="reference"`` it uses hidden state: it copies the held-out sentence's next word
    (optimal for ``beta=0``; with ``beta > 0`` the strongest simple policy, not the optimum).
    """
    core = cast(NextWordCore, env.unwrapped.core)
    steps = np.minimum(core.steps, core.max_words - 1)
    if core.reward == "lm":
        actions, _ = core.optimal_actions(env.unwrapped.episode_limit)
        return actions[np.minimum(steps, len(actions) - 1), core.window[:, -1]]
    reference = core.references[core.sentence, steps]
    return np.where(reference >= 0, reference, core.vocab.eos_id)


class NextWordEnv(CoreEnv):
    """Write the continuation of a real chat sentence, one word at a time.

    ## Description

    Generation as a Markov decision process. An episode starts from the first ``prompt_words``
    words of a held-out sentence of the chitchat corpus (7,168 real human chats, MIT licence, from
    the ``chitchat-dataset`` package); the agent appends one word per step until it writes
    ``<eos>`` or reaches ``max_words``. The vocabulary is the top ``vocab_size`` words of the
    training split (conversations are split 90/10 by a stable hash), with ``<eos>`` = 0,
    ``<unk>`` = 1 and ``<bos>`` = ``vocab_size`` (observation padding only).

    ## Action Space

    ``Discrete(vocab_size)``: the id of the next word; ``<eos>`` ends the sentence.

    ## Observation Space

    With ``observation="tokens"`` (default), ``MultiDiscrete([vocab_size + 1] * context + [max_words + 1])``:

    | Index       | Observation                                          |
    |-------------|------------------------------------------------------|
    | 0..context-1| ids of the last ``context`` words (``<bos>`` padded) |
    | context     | number of words the agent has written                |

    With ``observation="embedding"``, ``Box(-1, 1, (context * embedding_dim + 1,), float32)``: the
    unit-norm word vectors (PPMI + SVD of the training split's co-occurrences, built locally) of
    the same words, then the words written divided by ``max_words``.

    ## Rewards

    - ``reward="lm"`` (default): ``log p_ref(w | previous)``, the log-probability of the word under
      an interpolated Kneser-Ney bigram model of the training split (``<unk>`` scores as one
      unknown word, not as the whole class). Writing ``<eos>`` before ``min_words`` words costs
      ``early_end_penalty`` more, since the most probable sentence is otherwise the empty one.
      The return is the log-probability of the continuation: the optimum is the most probable
      sentence of at least ``min_words`` words.
    - ``reward="reference"``: 1 when the word equals the held-out sentence's word at that position
      (after its last word, ``<eos>``), else 0; ``<unk>`` never matches.
    - plus ``beta * log p_ref(w | previous)`` (``beta=0`` by default): the env's half of a KL
      penalty, a fluency term.

    ## Starting State

    A held-out sentence drawn uniformly from the ``split`` (``"test"`` by default) among those
    longer than ``prompt_words``; the observation holds its prompt.

    ## Episode End

    1. Termination: the agent writes ``<eos>``.
    2. Truncation: ``max_words`` words written (the registered ``max_episode_steps``).

    ## Information

    ``info`` carries ``text`` (``prompt >> written``) at reset and every step (in the vector env
    only at reset and at the end, with ``info_text=True``); at the end also the metrics ``words``,
    ``reference_matches`` and ``mean_log_prob``.

    ## Afterstate

    The token observation after appending the word (the next observation: appending is
    deterministic), with the embedding observation the same in vector form.

    ## Reference policies

    ``random``; ``oracle``: the exact optimum for ``"lm"`` by dynamic programming over (words
    written, previous word); for ``"reference"`` it reads the held-out sentence (hidden state).

    ## Arguments

    ``corpus`` (``"chitchat"`` or the path of a ``.txt``, ``.csv`` or ``.jsonl`` file with a ``text``
    column), ``vocab_size=2000``, ``context=3``, ``prompt_words=3``, ``max_words=20``,
    ``min_words=4``, ``early_end_penalty=10.0`` (both for ``"lm"`` only), ``reward="lm"``,
    ``beta=0.0``, ``observation="tokens"``, ``embedding_dim=32``, ``split="test"``,
    ``render_mode=None`` or ``"ansi"``.

    Bounds (a larger value has no meaning; the constructor refuses it, naming the argument):
    ``3 <= vocab_size <= 10,000,000`` (the vocabulary is capped at the corpus's word types anyway),
    ``1 <= context, prompt_words <= 1,000``, ``1 <= max_words <= 10,000``, ``0 <= min_words <=
    max_words``, ``1 <= embedding_dim <= 4,096`` (vectors are cut at the vocabulary size), and
    ``|beta|, |early_end_penalty| <= 1e6`` (:data:`nlp_envs.core.REWARD_BOUND`: beyond it one term
    swamps the others a millionfold and ``beta * log p`` overflows float64 near 1e308). Integers
    are Python or numpy integers, never ``bool``; numbers are finite. Within the bounds, a
    configuration whose tables and episode slots would not fit in memory is refused with the
    estimate and the limit (:func:`nlp_envs.resources.check_fits`).

    >>> import gymnasium as gym
    >>> import nlp_envs
    >>> env = gym.make("nlp_envs/NextWordEasy-v0", render_mode="ansi")
    >>> env.observation_space, env.action_space
    (MultiDiscrete([13 13  5]), Discrete(12))
    >>> observation, info = env.reset(seed=0)
    >>> observation, info["text"]
    (array([12,  8,  0]), 'and >>')
    >>> observation, reward, terminated, truncated, info = env.step(2)
    >>> env.render()
    'and >> i'

    Registered variants: ``nlp_envs/NextWord-v0`` (the defaults above) and
    ``nlp_envs/NextWordEasy-v0`` (``vocab_size=12, context=2, prompt_words=1, max_words=4, min_words=2``: 13 x 13
    x 5 observations, small enough for tabular Q-learning).

    ## Vectorized environment

    ``gym.make_vec("nlp_envs/NextWord-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    gives :class:`NextWordVectorEnv`, the same core over N slots (see :mod:`nlp_envs.core` for
    seeding and autoreset).

    ## Version History

    - v0: initial version.
    """

    core_class: ClassVar[type[TaskCore]] = NextWordCore


class NextWordVectorEnv(CoreVectorEnv):
    """The native vector version of :class:`NextWordEnv` (same core, N episode slots)."""

    core_class: ClassVar[type[TaskCore]] = NextWordCore
    reference_policies: ClassVar[dict[str, Any]] = {"random": random_policy, "oracle": oracle_policy}
