"""The batched environment core: each task is written once, as numpy code over N episodes.

A task subclasses :class:`TaskCore` and implements its dynamics for a whole batch of episodes.
:class:`CoreEnv` (a ``gymnasium.Env``) and :class:`CoreVectorEnv` (a native
``gymnasium.vector.VectorEnv``) are thin views of that core: the single env is the core with
``num_envs=1``, so the two can never drift apart.

Seeding rule (the same as Gymnasium's ``SyncVectorEnv``): ``reset(seed=s)`` seeds slot ``i`` with
``s + i`` (the single env is slot 0, seeded with ``s``; it uses its ``np_random``). A seeded slot
draws one 64-bit *slot key* from ``numpy.random.default_rng(seed)``; its ``k``-th episode gets the
*episode key* ``hash(slot key, k)``, and all the randomness of that episode (the prompt, the user,
the noise of every step) is derived from the episode key by a counter-based hash. So an episode
depends only on its slot's seed and on how many episodes that slot ran before, never on the batch
size: ``gym.make`` and ``gym.make_vec`` give the same trajectories for the same seeds and actions,
and restarting slots costs no Python loop. ``reset()`` without a seed goes on to the next episode;
a slot never seeded draws its key from fresh entropy. A seed is None or an integer >= 0, a Python or
numpy one, on both views (:func:`check_seed`; a bool, float or string is an :class:`InvalidSeedError`).

The vector env speaks Gymnasium's three autoreset modes (``autoreset_mode=``, default
``AutoresetMode.NEXT_STEP``), exactly as ``SyncVectorEnv`` over ``gym.make`` does in each:

- ``NEXT_STEP``: the step after an episode ends resets that slot, ignores its action and returns the
  first observation of the next episode with reward 0 and ``terminated = truncated = False``;
- ``SAME_STEP``: the step that ends an episode returns the first observation of the next one; the
  last observation is in ``info["final_obs"]`` (an object array) and the ending step's info in
  ``info["final_info"]`` (a dict of arrays with their own ``_`` masks), each masked by
  ``info["_final_obs"]`` / ``info["_final_info"]``;
- ``DISABLED``: an ended slot stays ended until ``reset(options={"reset_mask": mask})`` restarts it;
  stepping it before that raises ``gymnasium.error.ResetNeeded``.

Every task checks its keyword arguments with the same validators, :func:`check_int`,
:func:`check_float`, :func:`check_reward`, :func:`check_probability`, :func:`check_bool` and
:func:`check_choice`: ``bool`` is never an integer or a number, numpy scalars are accepted (and
returned as Python ones), numbers are finite, and a refusal is one ``ValueError`` line,
``"<env id>: <name> must be <expected>, got <value>; <how to fix>."``. The shells check that a
task's ``metrics()`` returns exactly ``metric_names`` and ``end_info_names`` (:func:`task_metrics`).

The ``<env id>`` of every message is the id the user made: the shells refuse a keyword argument
that neither they nor the core take (one ``KwargNameError`` line listing the valid names) before
the core loads anything, then build the core for the id that ``gym.make`` or ``gym.make_vec`` is
making, which the core holds as its ``env_id`` from before its ``__init__`` (a core built directly,
or an env built by a user's creator function, names the task's default id). ``env.spec`` and its
``kwargs`` are Gymnasium's, unchanged.

Truncation follows Gymnasium's ``TimeLimit``: the step that reaches the limit is truncated, also
when it terminates too, so ``gym.make`` (which adds that wrapper) and the vector env agree.
"""

from __future__ import annotations

import abc
import importlib
import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from nlp_envs.arguments import check_kwarg_names, factory_parameters
from nlp_envs.resources import check_fits

#: A reference policy: ``policy(observations, vector_env) -> actions``, batched.
Policy = Callable[[np.ndarray, Any], np.ndarray]

# 0-d arrays, not numpy scalars: as operands they cost numpy less per call (a single env's reset
# hashes several streams), and the arithmetic is the same uint64 arithmetic.
_GOLDEN = np.array(0x9E3779B97F4A7C15, dtype=np.uint64)
_MIX1 = np.array(0xBF58476D1CE4E5B9, dtype=np.uint64)
_MIX2 = np.array(0x94D049BB133111EB, dtype=np.uint64)
_SHIFT30, _SHIFT27, _SHIFT31, _SHIFT11 = (np.array(shift, dtype=np.uint64) for shift in (30, 27, 31, 11))


class InvalidActionError(ValueError):
    """An action outside the env's action space (wrong value, shape or dtype)."""


class InvalidSeedError(ValueError, gym.error.Error):
    """A ``reset`` seed that is not None or an integer >= 0 (a ``gymnasium.error.Error`` too, as Gymnasium's own)."""


def hash_keys(keys: np.ndarray, *counters: np.ndarray | int) -> np.ndarray:
    """Mix episode keys with counters into new 64-bit keys (splitmix64, vectorised).

    Args:
        keys: ``uint64`` episode keys, shape ``(n,)`` (or ``(n, k)``: ``k`` draws per key).
        *counters: integers or integer arrays broadcastable against ``keys``: which draw this is
            (a step number, a stream id for "which kind of noise").

    Returns:
        A new ``uint64`` array of the broadcast shape; equal inputs give equal outputs on every platform.
    """
    state = np.asarray(keys, dtype=np.uint64)
    single = _one_key_hash(state, counters)
    if single is not None:
        return np.array([single], dtype=np.uint64)
    # Allocating operators, not in-place ones: on small arrays numpy's in-place form costs about twice.
    for counter in counters:
        state = (state ^ (np.asarray(counter).astype(np.uint64, copy=False) * _GOLDEN)) + _GOLDEN
        state = (state ^ (state >> _SHIFT30)) * _MIX1
        state = (state ^ (state >> _SHIFT27)) * _MIX2
        state = state ^ (state >> _SHIFT31)
    return state if counters else state.copy()


_MASK64 = (1 << 64) - 1
_GOLDEN_INT, _MIX1_INT, _MIX2_INT = int(_GOLDEN), int(_MIX1), int(_MIX2)


def _one_key_hash(keys: np.ndarray, counters: tuple[np.ndarray | int, ...]) -> int | None:
    """:func:`hash_keys` of one key as a Python integer; None unless ``keys`` is one key and each counter one integer.

    The single env's case: Python integers cost a tenth of numpy's per-call overhead.
    """
    if np.shape(keys) != (1,):
        return None
    scalars = _scalar_counters(counters)
    return None if scalars is None else _splitmix_scalar(int(keys[0]) & _MASK64, scalars)


def _scalar_counters(counters: tuple[np.ndarray | int, ...]) -> list[int] | None:
    """The counters as Python ints wrapped to 64 bits, if each is one integer; else None (the numpy path)."""
    scalars = []
    for counter in counters:
        if isinstance(counter, (int, np.integer)):
            scalars.append(int(counter) & _MASK64)
        elif isinstance(counter, np.ndarray) and counter.shape in ((), (1,)) and counter.dtype.kind in "iub":
            scalars.append(int(counter.item()) & _MASK64)
        else:
            return None
    return scalars


def _splitmix_scalar(state: int, counters: list[int]) -> int:
    """:func:`hash_keys` of one key, in Python integers (the same arithmetic modulo 2**64)."""
    for counter in counters:
        state ^= (counter * _GOLDEN_INT) & _MASK64
        state = (state + _GOLDEN_INT) & _MASK64
        state = ((state ^ (state >> 30)) * _MIX1_INT) & _MASK64
        state = ((state ^ (state >> 27)) * _MIX2_INT) & _MASK64
        state ^= state >> 31
    return state


def allowed_acts(masks: np.ndarray) -> np.ndarray:
    """Boolean ``(n, n_actions)`` masks in which a row that allows nothing (an ended slot) allows every act."""
    masks = np.asarray(masks, dtype=bool)
    return masks | ~masks.any(axis=1, keepdims=True)


def hashes_to_uniform(hashes: np.ndarray) -> np.ndarray:
    """Uniform floats in ``[0, 1)`` from :func:`hash_keys` outputs (their top 53 bits), same shape."""
    return (np.asarray(hashes, dtype=np.uint64) >> _SHIFT11).astype(np.float64) * 2.0**-53


def random_integers(keys: np.ndarray, high: int | np.ndarray, *counters: np.ndarray | int) -> np.ndarray:
    """Integers uniform in ``[0, high)`` (bias below ``high / 2**64``), one per key, from the key and counters."""
    single = _one_key_hash(keys, counters) if isinstance(high, (int, np.integer)) and high > 0 else None
    if single is not None:
        return np.array([single % int(high)], dtype=np.int64)
    return (hash_keys(keys, *counters) % np.asarray(high, dtype=np.uint64)).astype(np.int64)


#: The largest magnitude of a reward-scale argument (a reward, a cost, a penalty, a weight on a
#: log-probability). Above it one term swamps every other by a factor of a million, and an
#: episode's return leaves the range where float32 agents keep unit precision (and sums of such
#: rewards overflow float64 near 1e308).
REWARD_BOUND = 1e6

_REPR_LIMIT = 60
_INT_FIX = "pass a Python or numpy integer (not a bool, float or string) within that range"
_FLOAT_FIX = "pass a Python or numpy real number (not a bool, string or sequence) within that range"


def numpy_c_function(name: str, wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """The C function ``name`` of numpy that ``wrapper`` (``np.einsum``, ``np.count_nonzero``) calls after Python code.

    A one-slot call (the single env) pays the wrapper in full (``np.einsum``'s as much again as the sum;
    ``np.count_nonzero``'s array-function dispatch three times the count). The same function on the same
    operands: the same results, bit for bit. ``wrapper`` itself where a numpy version keeps it elsewhere.
    """
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return wrapper


#: How many items of an array are true (nonzero): ``np.count_nonzero(a)`` without an axis, at a quarter
#: of its cost on a one-slot array. The tasks ask it to skip the parts of a step that concern no slot.
count_nonzero: Callable[[np.ndarray], int] = numpy_c_function("count_nonzero", np.count_nonzero)


def short_repr(value: Any) -> str:
    """``repr(value)``, shortened: a nested structure in an error message stays on one short line."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else f"{text[: _REPR_LIMIT - 3]}..."


def _refuse(env: str, name: str, expected: str, value: Any, fix: str) -> ValueError:
    return ValueError(f"{env}: {name} must be {expected}, got {short_repr(value)}; {fix}.")


def check_int(env: str, name: str, value: Any, low: int, high: int | None = None, *, fix: str = "") -> int:
    """``value`` as a Python int in ``[low, high]``, or a ValueError naming ``name``.

    Python and numpy integers are accepted; ``bool`` (an ``int`` subclass) never is, nor floats,
    even whole ones.

    Args:
        env: the env id that the message starts with.
        name: the keyword argument.
        value: what the caller passed.
        low: the smallest accepted value.
        high: the largest accepted value (None: no bound).
        fix: how to fix it, when more helpful than "pass an integer in that range".

    Returns:
        ``int(value)``.

    Raises:
        ValueError: ``value`` is not an integer or is out of range; the message names ``env``,
            ``name``, the range, the value and how to fix it.
    """
    expected = f"an integer >= {low}" + ("" if high is None else f" and <= {high:,}")
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not integer or value < low or (high is not None and value > high):
        raise _refuse(env, name, expected, value, fix or _INT_FIX)
    return int(value)


def check_float(
    env: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    what: str = "number",
    fix: str = "",
) -> float:
    """``value`` as a finite Python float in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Python and numpy integers and floats are accepted; ``bool``, strings, complex numbers,
    sequences, NaN and infinities never are.

    Args:
        env: the env id that the message starts with.
        name: the keyword argument.
        value: what the caller passed.
        low: the smallest accepted value (excluded with ``low_open``).
        high: the largest accepted value.
        low_open: exclude ``low`` itself (e.g. a budget that must be positive).
        what: what the message calls the value (``"number"``, ``"probability"``).
        fix: how to fix it, when more helpful than "pass a number in that range".

    Returns:
        ``float(value)``.

    Raises:
        ValueError: ``value`` is not a finite real number in range; the message names ``env``,
            ``name``, the range, the value and how to fix it.
    """
    noun = f"finite {what}" if what == "number" else what
    if math.isinf(low) and math.isinf(high):
        expected = f"a {noun}"
    elif math.isinf(high):
        expected = f"a positive {noun}" if low == 0 and low_open else f"a {noun} {'>' if low_open else '>='} {low:g}"
    elif math.isinf(low):
        expected = f"a {noun} <= {high:g}"
    else:
        expected = f"a {noun} in {'(' if low_open else '['}{low:g}, {high:g}]"
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    number = float(value) if numeric else math.nan
    if not math.isfinite(number) or not low <= number <= high or (low_open and number == low):
        raise _refuse(env, name, expected, value, fix or _FLOAT_FIX)
    return number


def check_reward(env: str, name: str, value: Any, low: float = -REWARD_BOUND, *, fix: str = "") -> float:
    """A reward-scale argument: :func:`check_float` within ``[low, REWARD_BOUND]`` (see :data:`REWARD_BOUND`)."""
    return check_float(
        env,
        name,
        value,
        low,
        REWARD_BOUND,
        fix=fix
        or f"rewards, costs and weights are at most {REWARD_BOUND:g} in size (a larger one swamps the others a "
        "millionfold, and returns overflow near 1e308); rescale them",
    )


def check_probability(env: str, name: str, value: Any, *, fix: str = "") -> float:
    """A probability: :func:`check_float` in ``[0, 1]``."""
    return check_float(env, name, value, 0.0, 1.0, what="probability", fix=fix or "pass a number between 0 and 1")


def check_bool(env: str, name: str, value: Any, *, optional: bool = False) -> bool | None:
    """``value`` as a Python bool: ``True``/``False`` (or numpy's), never a truthy number or string.

    Args:
        env: the env id that the message starts with.
        name: the keyword argument.
        value: what the caller passed.
        optional: accept None too (returned as None: "decide for me").

    Raises:
        ValueError: anything else, naming ``env`` and ``name``.
    """
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        expected = "True, False or None" if optional else "True or False"
        raise _refuse(env, name, expected, value, "pass a bool")
    return bool(value)


def check_choice(env: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (of the same type: ``1`` is not ``True``), else a ValueError.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: ``value`` is not one of ``choices``; the message names ``name`` and lists them.
    """
    if not any(isinstance(value, type(choice)) and value == choice for choice in choices):
        raise ValueError(f"{env}: {name}={short_repr(value)} is not one of {tuple(choices)}; pick one of them.")
    return value


def check_file_option(
    env: str, name: str, value: Any, default: Any, source: str, given: Any, named: Sequence[str]
) -> None:
    """Refuse an option that only a data file reads (a column name) given with a named dataset, which ignores it.

    Args:
        env: the env id that the message starts with.
        name: the option (e.g. ``text_column``).
        value: what the caller passed.
        default: the option's default (passing it changes nothing, so it is accepted).
        source: the argument that picks the data (e.g. ``dataset``).
        given: its value.
        named: the named datasets, which have their own columns.

    Raises:
        ValueError: ``given`` is a named dataset and ``value`` is not the default.
    """
    if str(given) in named and value != default:
        raise ValueError(
            f"{env}: {name}={short_repr(value)} names a column of a dataset file, but {source}={short_repr(given)} "
            f"is a named dataset with columns of its own, so it would be ignored; remove {name}, or pass "
            f"{source}=PATH of your file."
        )


def check_fits_slots(env: str, what: str, bytes_per_slot: float, num_envs: int, shared_bytes: float = 0) -> None:
    """Refuse (``nlp_envs.resources.check_fits``) a core whose slot state and shared tables cannot fit.

    Args:
        env: the env id.
        what: the arguments that drive the size, e.g. ``"max_turns=20"``.
        bytes_per_slot: the state of one episode slot, in bytes.
        num_envs: the slots.
        shared_bytes: tables shared by every slot, in bytes.

    Raises:
        nlp_envs.resources.ResourceLimitError: the estimate exceeds the memory limit.
    """
    check_fits(f"{env} with {what}, num_envs={num_envs}", bytes_per_slot * num_envs + shared_bytes)


class TaskCore(abc.ABC):
    """The dynamics of one task over a batch of ``num_envs`` episodes.

    A subclass sets ``single_observation_space``, ``single_action_space`` (a ``Discrete``) and
    ``max_steps`` in ``__init__`` and implements :meth:`begin`, :meth:`advance`, :meth:`observe`,
    :meth:`metrics`, :meth:`text` and :meth:`afterstate`. All state is held in arrays whose first
    axis is the episode slot. It may override :meth:`observe_slots`, :meth:`step_info_slots` and
    :meth:`action_masks_slots` (the same values for a few slots, which SAME_STEP autoreset asks for
    the restarted slots) where computing a few slots costs less than computing all of them.

    :meth:`advance` is called for every slot, including slots whose episode has just ended and that
    the shell will restart right after with :meth:`begin`; it must accept any valid action there
    (their results are discarded) and must never raise for them.

    A task may split its :meth:`begin` in two, overriding both :meth:`draw_begins` (everything a
    begin computes from the episode keys alone, batched) and :meth:`begin_drawn` (the state writes),
    with ``begin(slots, keys) == begin_drawn(slots, draw_begins(keys))``. The single env then draws
    its next episodes ahead, many in one call (see :class:`_BeginsAhead`): a begin costs numpy's
    per-call overhead whether it starts one episode or 64.
    """

    #: The task's default id (a class attribute); a core that a view builds for ``gym.make(id)`` or
    #: ``gym.make_vec(id)`` holds that id instead, from before its ``__init__`` runs, so that every
    #: message, at construction and after, names the id the user made.
    env_id: str = ""
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: Per-episode values that :meth:`metrics` returns beside the metrics: they go into the info of
    #: the step that ends an episode, but are not scores (a leaderboard does not average them).
    end_info_names: ClassVar[tuple[str, ...]] = ()
    #: The keys of :meth:`metrics` once :func:`task_metrics` has checked them (None before).
    _checked_metric_keys: frozenset[str] | None = None
    single_observation_space: gym.Space
    single_action_space: gym.spaces.Discrete
    afterstate_space: gym.Space
    max_steps: int

    def __init__(self, num_envs: int) -> None:
        self.num_envs = check_int(self.env_id, "num_envs", num_envs, 1)

    @abc.abstractmethod
    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Start new episodes in ``slots`` (int array), drawing all randomness from ``keys`` (uint64).

        Neither array is the core's to write: a one-slot core's keys are rows of keys drawn ahead
        (read-only), and ``slots`` is shared by every reset.
        """

    @abc.abstractmethod
    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply one valid action per slot; return ``(rewards float64, terminated bool)``.

        ``actions`` is not the core's to write: the vector env may hand on the caller's own array, and
        the single env a read-only one kept per action.
        """

    @abc.abstractmethod
    def observe(self) -> np.ndarray:
        """The observations of all slots, shape ``(num_envs, *single_observation_space.shape)``.

        A new array at every call, which the caller owns: libraries write into what a step returns
        (TorchRL's SAME_STEP handling puts the final observations there), so an array the core keeps
        would be corrupted.
        """

    @abc.abstractmethod
    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """The task metrics of the episodes in ``slots``, one value each.

        The keys are exactly ``metric_names`` and ``end_info_names`` (the shells check it, see
        :func:`task_metrics`).
        """

    @abc.abstractmethod
    def text(self, slot: int) -> str:
        """The decoded text of the episode in ``slot`` so far."""

    @abc.abstractmethod
    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The afterstates of taking ``actions`` in ``observations`` (a function of both only).

        Args:
            observations: a batch of observations, shape ``(n, *single_observation_space.shape)``.
            actions: one action per observation, shape ``(n,)``.

        Returns:
            A batch of points of ``afterstate_space``, shape ``(n, *afterstate_space.shape)``.
        """

    def draw_begins(self, keys: np.ndarray) -> tuple[Any, ...]:
        """Everything :meth:`begin` computes from ``keys`` alone, for ``len(keys)`` episodes (optional).

        A tuple (or NamedTuple) of arrays, or of such tuples, whose arrays' first axis is the episode:
        row ``i`` is what a draw of ``keys[i]`` alone gives, bit for bit (no reduction across rows, no
        state read or written).
        The shell keeps a one-slot core's arrays and may start a later episode of the same key from
        its row again, so they are read-only to :meth:`begin_drawn`; a core of more than one slot
        may return buffers of its own that its next draw overwrites (the shell keeps none of its draws).
        """
        raise NotImplementedError(f"{type(self).__name__} does not draw its begins ahead")

    def begin_drawn(self, slots: np.ndarray, drawn: Any) -> None:
        """Start episodes in ``slots`` from ``drawn`` (row ``i`` for ``slots[i]``; optional, see :meth:`draw_begins`).

        It writes the state from the rows (copies: the state never holds a view of ``drawn``) and
        does whatever depends on the state rather than on the keys.
        """
        raise NotImplementedError(f"{type(self).__name__} does not draw its begins ahead")

    def step_info(self) -> dict[str, np.ndarray]:
        """Per-step info arrays for every slot (e.g. ``action_mask``); none by default."""
        return {}

    def step_info_row(self, row: int) -> dict[str, Any]:
        """The single env's per-step info: the values of slot ``row`` in :meth:`step_info`, which the caller owns.

        A numpy scalar for a per-slot value, a new array for a per-act one (a row of a 2-D info array):
        the keys, values and dtypes of ``step_info()``'s row, never a view of the task's arrays. The
        default copies that row out of ``step_info()``; a task overrides it where making one row's
        values costs less than indexing every array (the single env pays it at every step).
        """
        # Inline, not a helper's call per key: a numpy scalar is immutable, a per-act row is copied.
        return {
            key: value.copy() if isinstance(value := values[row], np.ndarray) else value
            for key, values in self.step_info().items()
        }

    def action_masks(self) -> np.ndarray | None:
        """``(num_envs, n_actions)`` booleans, True where an act makes sense now; None if all do."""
        return None

    # Optional: the same quantities for a subset of the slots. SAME_STEP autoreset needs them for the
    # slots that just restarted; the defaults compute every slot and index, a task overrides them
    # where computing a few slots is cheaper (one definition: the whole-batch method and the
    # per-slot one call the same code with different rows).

    def observe_slots(self, slots: np.ndarray) -> np.ndarray:
        """``observe()[slots]``: the observations of ``slots`` (int array) alone, a new array."""
        return self.observe()[slots]

    def step_info_slots(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """``step_info()`` of ``slots`` alone: the same keys, arrays with ``len(slots)`` rows."""
        return {key: np.asarray(values)[slots] for key, values in self.step_info().items()}

    def action_masks_slots(self, slots: np.ndarray) -> np.ndarray | None:
        """``action_masks()[slots]`` (None if the task has no mask)."""
        masks = self.action_masks()
        return None if masks is None else masks[slots]


def _validate_actions(env_id: str, n: int, actions: Any, batch_shape: tuple[int, ...]) -> np.ndarray:
    """Return the actions as an int64 array of ``batch_shape`` or raise :class:`InvalidActionError`."""
    if batch_shape == () and isinstance(actions, (int, np.integer)) and not isinstance(actions, bool):
        if 0 <= actions < n:
            return np.array([actions], dtype=np.int64)
    array = np.asarray(actions)
    expected = "an integer" if batch_shape == () else f"an integer array of shape {batch_shape}"
    if array.dtype.kind not in "iu":  # bool is kind "b": rejected too
        raise InvalidActionError(
            f"{env_id}: action {actions!r} has dtype {array.dtype}; expected {expected} "
            f"with values in [0, {n - 1}] (Discrete({n}))."
        )
    if array.shape != batch_shape:
        raise InvalidActionError(
            f"{env_id}: action has shape {array.shape}; expected {expected} "
            f"with values in [0, {n - 1}] (Discrete({n}))."
        )
    if array.size and (array.min() < 0 or array.max() >= n):
        bad = array[(array < 0) | (array >= n)]
        raise InvalidActionError(
            f"{env_id}: action {bad.flat[0]} is outside the action space Discrete({n}); "
            f"valid actions are the integers 0 to {n - 1}."
        )
    return array.astype(np.int64, copy=False).reshape(-1)


def slot_index(slots: np.ndarray) -> slice | np.ndarray:
    """``slots`` (an int array) as an index: a slice when it is one slot, else the array itself.

    The single env begins its one slot through this: a slice costs a fraction of fancy indexing's
    per-call overhead, and ``state[slot_index(slots)] = values`` writes the same entries.
    """
    return slice(int(slots[0]), int(slots[0]) + 1) if len(slots) == 1 else slots


_NO_SLOTS = np.zeros(0, dtype=np.int64)
#: SAME_STEP observes the restarted slots alone when at most one slot in this many restarted (measured
#: at x1024: below about one in eight the per-slot views cost less, above it the whole batch does).
_FEW_RESTARTS = 8
_SLOT_0 = np.zeros(1, dtype=np.int64)  # the single env's slot, for its metrics
_SLOT_0.flags.writeable = False  # shared by every single env: no core may write into ``slots``


#: The most episodes the single env draws ahead in one :meth:`TaskCore.draw_begins` call.
BEGINS_AHEAD = 64


def _draws_ahead(core: TaskCore) -> bool:
    """Whether ``core`` splits its begin (:meth:`TaskCore.draw_begins`); a task overriding one half only is named."""
    task = type(core)
    drawn = task.begin_drawn is not TaskCore.begin_drawn
    if drawn != (task.draw_begins is not TaskCore.draw_begins):
        raise TypeError(
            f"{task.__name__} ({core.env_id}) overrides only one of draw_begins and begin_drawn; "
            "a task that draws its begins ahead overrides both (see TaskCore.draw_begins)."
        )
    return drawn


class _BeginsAhead:
    """The episodes of a one-slot core, drawn ahead from their keys (the single env's resets).

    Episode ``k`` of a slot has the key ``hash(slot key, k)``, known in advance: so the next episodes'
    keys are one batched hash, and, for a core that splits its begin, their :meth:`TaskCore.draw_begins`
    one batched call; each reset starts its episode from a row. The batch doubles from one episode
    after every change of slot key up to :data:`BEGINS_AHEAD`, so a user who seeds every reset pays
    for one episode a draw.
    """

    def __init__(self, core: TaskCore, splits: bool) -> None:
        self.core = core
        self.splits = splits
        self.start = core.begin_drawn if splits else core.begin  # called with a row's record, or its keys
        self.slot_key: int | None = None
        self.first = self.count = 0  # the episodes drawn: first, first + 1, ..., first + count - 1
        self.size = 1
        self.rows: list[Any] = []  # per episode drawn: its row of draw_begins' tuple, or its key (one-row views)

    def begin(self, slots: np.ndarray, slot_key: int, episode: int) -> None:
        """Start the slot's episode ``episode`` (its key ``hash(slot_key, episode)``) in ``slots``."""
        row = episode - self.first
        if slot_key != self.slot_key or not 0 <= row < self.count:
            if slot_key != self.slot_key:
                self.size = 1
            self._draw(slot_key, episode)
            row = 0
        self.start(slots, self.rows[row])

    def _draw(self, slot_key: int, episode: int) -> None:
        size = self.size
        episodes = np.arange(episode, episode + size, dtype=np.uint64)
        keys = hash_keys(np.full(size, slot_key, dtype=np.uint64), episodes)
        # A core that does not split its begin is given its keys: drawn as a record of them alone.
        drawn: Any = self.core.draw_begins(keys) if self.splits else (keys,)
        arrays = _drawn_arrays(drawn) if isinstance(drawn, tuple) else None
        if arrays is None or not all(array.ndim and len(array) == size for array in arrays):
            raise TypeError(
                f"{type(self.core).__name__} ({self.core.env_id}): draw_begins() of {size} keys returned "
                f"{short_repr(drawn)}; expected a tuple of arrays (or of such tuples) with one row per key."
            )
        for array in arrays:
            array.flags.writeable = False  # a row starts this episode again if its key comes back
        self.rows = _drawn_rows(drawn) if self.splits else list(keys[:, None])  # (the keys' rows themselves)
        self.slot_key, self.first, self.count = slot_key, episode, size
        self.size = min(2 * size, BEGINS_AHEAD)


def _drawn_rows(drawn: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Each row of ``drawn`` (a tuple of arrays or of such tuples) in the same records, as one-row views.

    Made for all rows at once: iterating an array makes its row views in C, at a fraction of a slice's
    cost each, so that a reset takes its row's record with one lookup.
    """
    columns = [_drawn_rows(field) if isinstance(field, tuple) else list(field[:, None]) for field in drawn]
    make = drawn._make if hasattr(drawn, "_make") else tuple
    return [make(parts) for parts in zip(*columns, strict=True)]


def _drawn_arrays(drawn: tuple[Any, ...]) -> list[np.ndarray] | None:
    """The arrays of ``drawn`` (a tuple of arrays or of such tuples); None for anything else or an empty tuple."""
    if not drawn:
        return None
    arrays: list[np.ndarray] = []
    for field in drawn:
        inner = _drawn_arrays(field) if isinstance(field, tuple) else [field] if isinstance(field, np.ndarray) else None
        if inner is None:
            return None
        arrays += inner
    return arrays


class _Episodes:
    """Bookkeeping shared by both views: slot keys, episode and step counts, which slots have ended."""

    def __init__(self, core: TaskCore, max_episode_steps: int | None) -> None:
        self.core = core
        # The vector env checks max_episode_steps by name before the task loads; here only the task's own bound.
        if core.max_steps < 1:
            raise ValueError(f"{type(core).__name__} ({core.env_id}): max_steps is {core.max_steps}; fix the task.")
        limit = core.max_steps if max_episode_steps is None else min(core.max_steps, max_episode_steps)
        self.limit = limit
        self.slot_keys = np.zeros(core.num_envs, dtype=np.uint64)
        self.episodes = np.zeros(core.num_envs, dtype=np.uint64)
        self.seeded = np.zeros(core.num_envs, dtype=bool)
        self.elapsed = np.zeros(core.num_envs, dtype=np.int64)
        self.ended = np.zeros(core.num_envs, dtype=bool)
        self.all_slots = np.arange(core.num_envs)
        self.all_slots.flags.writeable = False  # handed to every reset: no core may write into ``slots``
        self.started = False
        splits = _draws_ahead(core)  # a task that splits only half its begin is refused, whatever the slots
        self.ahead = _BeginsAhead(core, splits) if core.num_envs == 1 else None

    def seed(self, seeds: Sequence[int | np.random.Generator | None] | None) -> None:
        """Give each slot a key: from its seed (or generator); unseeded slots keep theirs or draw one.

        ``seeds=None`` seeds no slot: only the slots never seeded draw a key, so that a reset without
        a seed (each step of a DISABLED-mode loop) costs no Python loop over the slots.
        """
        pairs = (
            enumerate(seeds) if seeds is not None else ((slot, None) for slot in np.flatnonzero(~self.seeded).tolist())
        )
        for slot, seed in pairs:
            if seed is not None or not self.seeded[slot]:
                rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
                self.slot_keys[slot] = rng.bit_generator.random_raw()
                self.episodes[slot] = 0
                self.seeded[slot] = True

    def begin(self, slots: np.ndarray) -> None:
        if len(slots) == 1:  # the single env's reset: Python integers cost a fraction of numpy's per-call overhead
            slot = int(slots[0])
            episode = int(self.episodes[slot])
            if self.ahead is not None:
                self.ahead.begin(slots, int(self.slot_keys[slot]), episode)
            else:
                key = _splitmix_scalar(int(self.slot_keys[slot]), [episode])
                self.core.begin(slots, np.array([key], dtype=np.uint64))
            self.episodes[slot], self.elapsed[slot], self.ended[slot] = episode + 1, 0, False
            return
        self.core.begin(slots, hash_keys(self.slot_keys[slots], self.episodes[slots]))
        self.episodes[slots] += np.uint64(1)
        self.elapsed[slots] = 0
        self.ended[slots] = False

    def step_one(self, actions: np.ndarray) -> tuple[float, bool, bool]:
        """Advance a core of one slot that does not restart by itself: its reward, terminated and truncated.

        The single env's step: Python values cost a fraction of numpy's per-call overhead on
        one-element arrays (about 3 us a step).
        """
        rewards, terminated = self.core.advance(actions)
        elapsed = int(self.elapsed[0]) + 1
        self.elapsed[0] = elapsed
        is_terminated, is_truncated = bool(terminated[0]), elapsed >= self.limit
        self.ended[0] = is_terminated or is_truncated  # in place: nothing else holds ``ended``
        return float(rewards[0]), is_terminated, is_truncated

    def reset_all(self) -> None:
        self.begin(self.all_slots)
        self.started = True

    def step(
        self, actions: np.ndarray, autoreset: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every slot; return rewards, terminated, truncated and the restarted slots.

        With ``autoreset=True`` (NEXT_STEP) the slots that had ended restart instead, with reward 0 and
        no end; with ``autoreset=False`` (the single env, which its user resets, and the vector env's
        other modes, which never step an ended slot) no slot restarts.
        """
        if not autoreset and len(self.ended) == 1:  # a vector env of one slot in SAME_STEP or DISABLED mode
            reward, is_terminated, is_truncated = self.step_one(actions)
            return np.array([reward]), np.array([is_terminated]), np.array([is_truncated]), _NO_SLOTS
        restarting = np.flatnonzero(self.ended) if autoreset else _NO_SLOTS
        rewards, terminated = self.core.advance(actions)
        self.elapsed += 1
        # As Gymnasium's TimeLimit does: the last allowed step is truncated even if it also terminates.
        truncated = self.elapsed >= self.limit
        if restarting.size:
            self.begin(restarting)
            rewards[restarting] = 0.0
            terminated[restarting] = False
            truncated[restarting] = False
        self.ended = terminated | truncated
        return rewards, terminated, truncated, restarting


#: Gymnasium's functions that call an entry point, each with the spec field that names the entry point.
_MAKERS = {
    gym.envs.registration.make.__code__: "entry_point",
    gym.envs.registration.make_vec.__code__: "vector_entry_point",
}
#: How many frames above a view's ``__init__`` a maker may be (a subclass's own ``__init__`` between them).
_MAKER_DEPTH = 4


def _made_id(view: type) -> str | None:
    """The id that ``gym.make`` or ``gym.make_vec`` is making now with ``view`` as its entry point, else None.

    Gymnasium sets ``env.spec`` only after the constructor returns, and neither the entry point (one
    string for every id of a task) nor the keyword arguments tell the ids of a task apart; so the
    view reads the spec from the Gymnasium frame that is calling it. Only a maker whose spec's entry
    point is ``view`` itself counts (an env that a user's creator function builds inside
    ``gym.make`` of another id is not that id). Called from a view's ``__init__``.

    Returns:
        The id, or None (built directly, by an unknown caller, or on a Python without frames):
        the caller then names the task's default id.
    """
    frame = sys._getframe(1) if hasattr(sys, "_getframe") else None
    try:
        for _ in range(_MAKER_DEPTH + 1):
            if frame is None:
                return None
            field = _MAKERS.get(frame.f_code)
            if field is not None:
                spec = frame.f_locals.get("env_spec")
                if not isinstance(spec, gym.envs.registration.EnvSpec):
                    return None
                entry = getattr(spec, field)
                try:
                    creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
                except Exception:  # an entry point that does not load is not ours
                    return None
                return spec.id if creator is view else None
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame refers to its locals: keep no reference cycle alive


_VIEW_PARAMETERS: dict[type, dict[str, inspect.Parameter] | None] = {}


def _view_parameters(view: type) -> dict[str, inspect.Parameter] | None:
    """The keyword arguments a view takes: its own and its core's (``factory_parameters``), once per class.

    None when they cannot be known (a core that takes ``**kwargs``): then no name is refused here.
    Cached: reading the signatures costs about a third of building a small env.
    """
    if view not in _VIEW_PARAMETERS:
        _VIEW_PARAMETERS[view] = factory_parameters(view)
    return _VIEW_PARAMETERS[view]


class _CoreView:
    """What both views of a core share: their name in errors, argument checks, the core's construction, afterstates."""

    core: TaskCore
    core_class: ClassVar[type[TaskCore]]
    metadata: dict[str, Any]
    spec: Any

    @property
    def env_id(self) -> str:
        """The registered id this env was made from (for error messages), else the task's default id."""
        return self.spec.id if self.spec is not None else self.core.env_id

    def _check_render_mode(self, env_id: str, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"{env_id}: render_mode={render_mode!r} is not supported; "
                f"expected None or one of {self.metadata['render_modes']}."
            )

    def _build_core(
        self, env_id: str, num_envs: Any, task_kwargs: dict[str, Any], given: dict[str, str] | None = None
    ) -> TaskCore:
        """The core for ``env_id``, its keyword argument names checked first (before the task loads any data).

        Raises:
            nlp_envs.arguments.KwargNameError: a name that neither the view nor the core takes (the
                message lists the valid ones), or one in ``given`` (the view sets it itself).
        """
        check_kwarg_names(env_id, task_kwargs, _view_parameters(type(self)), given=given)
        # The id is set before ``__init__`` runs: the task's own messages at construction name it too.
        core = self.core_class.__new__(self.core_class)
        core.env_id = env_id
        self.core_class.__init__(core, num_envs=num_envs, **task_kwargs)
        return core

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Batched afterstates of ``(observation, action)`` pairs; see the env docstring."""
        n = int(self.core.single_action_space.n)
        observations = np.asarray(observations)
        shape = self.core.single_observation_space.shape or ()
        if observations.shape[1:] != shape or observations.ndim != len(shape) + 1:
            raise ValueError(
                f"{self.env_id}: afterstate(observations, actions) got observations of shape {observations.shape}; "
                f"expected a batch of this env's observations, shape (n, {', '.join(map(str, shape))}), with one "
                "action per observation (a single observation is a batch of one: observation[None])."
            )
        return self.core.afterstate(observations, _validate_actions(self.env_id, n, actions, observations.shape[:1]))


#: What the single env sets itself, with how the user chooses it instead.
_SINGLE_ENV_SETS = {"num_envs": "the single env has one slot; for N use gym.make_vec(id, num_envs=N)"}


class CoreEnv(_CoreView, gym.Env):
    """A ``gymnasium.Env`` view of a :class:`TaskCore` with one episode slot.

    Its ``info`` carries the episode's decoded ``text`` so far at reset and at every step, the
    core's per-step info, and the task metrics on the step that ends the episode.

    Subclasses set ``core_class`` and write the environment's documentation in their docstring.
    """

    core_class: ClassVar[type[TaskCore]]
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **task_kwargs: Any) -> None:
        env_id = _made_id(type(self)) or self.core_class.env_id
        self._check_render_mode(env_id, render_mode)
        self.render_mode = render_mode
        self.core = self._build_core(env_id, 1, task_kwargs, given=_SINGLE_ENV_SETS)
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._n_actions = int(self.action_space.n)
        self._action_rows: list[np.ndarray | None] = [None] * self._n_actions  # each valid action's, once used
        self._episodes = _Episodes(self.core, None)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` makes it and everything after it reproducible.

        ``seed`` is None or an integer >= 0, a Python or numpy one (as the vector env takes it).
        """
        if seed is not None:  # the id is read only for a message: a reset per episode pays for no lookup
            seed = check_seed(self.env_id, seed)
        if options is not None:
            _reject_options(self.env_id, options)
        super().reset(seed=seed)
        if seed is not None or not self._episodes.seeded[0]:
            self._episodes.seed([self.np_random])
        self._episodes.reset_all()
        info = self._info(ended=False)
        info["text"] = self.core.text(0)
        return self.core.observe()[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Take one action; after the episode ends, call :meth:`reset`."""
        if not self._episodes.started:
            raise gym.error.ResetNeeded(f"{self.env_id}: call reset() before step().")
        # A valid Python or numpy integer takes its kept one-element array: making one costs about 1 us.
        valid = isinstance(action, (int, np.integer)) and not isinstance(action, bool) and 0 <= action < self._n_actions
        actions = self._action_rows[action] if valid else None
        if actions is None:
            actions = _validate_actions(self.env_id, self._n_actions, action, ())
            if valid:
                actions.flags.writeable = False  # kept for every later step that takes this action: never written
                self._action_rows[action] = actions
        # The single env never autoresets: a step after the end continues the finished episode's
        # arrays harmlessly, as Gymnasium leaves that case undefined.
        reward, is_terminated, is_truncated = self._episodes.step_one(actions)
        info = self._info(ended=is_terminated or is_truncated)
        info["text"] = self.core.text(0)
        return self.core.observe()[0], reward, is_terminated, is_truncated, info

    def _info(self, *, ended: bool) -> dict[str, Any]:
        info = _task_info(self.core, row=0)
        if ended:
            info.update({key: value[0] for key, value in task_metrics(self.core, _SLOT_0).items()})
        return info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, the text of the current episode."""
        if self.render_mode is None:
            gym.logger.warn(f"{self.env_id}: render() called without render_mode; pass render_mode='ansi'.")
            return None
        return self.core.text(0)

    def action_masks(self) -> np.ndarray:
        """The acts that make sense now (all True when the task has no mask)."""
        mask = self.core.action_masks()
        return np.ones(int(self.core.single_action_space.n), dtype=bool) if mask is None else mask[0]


class CoreVectorEnv(_CoreView, VectorEnv):
    """A native ``gymnasium.vector.VectorEnv`` view of a :class:`TaskCore` with ``num_envs`` slots.

    Infos are dicts of arrays; each key ``k`` comes with a boolean mask ``_k``. Every step carries
    the core's per-step info (with ``action_mask`` on a task that masks acts); the step where an
    episode ends carries its task metrics (masked to the ending slots, inside ``info["final_info"]``
    with SAME_STEP autoreset) and, with ``info_text=True``, its decoded ``text`` (off by default:
    decoding is a Python call per episode, which would dominate a batch of a thousand episodes).

    ``autoreset_mode`` (an ``AutoresetMode`` or its string value, default NEXT_STEP) decides how
    ended slots restart, as the module docstring says; it is ``env.autoreset_mode`` and
    ``env.metadata["autoreset_mode"]``, and may be set again between steps. In every mode
    ``reset(options={"reset_mask": mask})`` restarts just the slots where ``mask`` is True.
    """

    core_class: ClassVar[type[TaskCore]]
    metadata = {
        "render_modes": ["ansi"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        info_text: bool = False,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **task_kwargs: Any,
    ) -> None:
        env_id = _made_id(type(self)) or self.core_class.env_id
        self._check_render_mode(env_id, render_mode)
        # Checked before the task loads its data.
        mode = parse_autoreset_mode(env_id, autoreset_mode)
        info_text = bool(check_bool(env_id, "info_text", info_text))
        if max_episode_steps is not None:
            max_episode_steps = check_int(env_id, "max_episode_steps", max_episode_steps, 1)
        self.core = self._build_core(env_id, num_envs, task_kwargs)
        self.num_envs = self.core.num_envs
        self.render_mode = render_mode
        self.info_text = info_text
        self.metadata = dict(type(self).metadata)  # this env's own: its mode may differ from the class default
        self.autoreset_mode = mode
        self.single_observation_space = self.core.single_observation_space
        self.single_action_space = self.core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._episodes = _Episodes(self.core, max_episode_steps)
        self._all = np.ones(self.num_envs, dtype=bool)

    @property
    def autoreset_mode(self) -> AutoresetMode:
        """How ended slots restart: Gymnasium's ``AutoresetMode`` (settable, also as its string value)."""
        return self._autoreset_mode

    @autoreset_mode.setter
    def autoreset_mode(self, mode: AutoresetMode | str) -> None:
        self._autoreset_mode = parse_autoreset_mode(self.env_id, mode)
        self.metadata["autoreset_mode"] = self._autoreset_mode

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode in every slot, or with ``options={"reset_mask": mask}`` in the masked slots only.

        ``seed=s`` seeds slot ``i`` with ``s + i``; a list gives one seed per slot. With a mask, only
        the masked slots restart and take their seeds, as in Gymnasium's ``SyncVectorEnv``; the
        infos are masked to them and the observations of the other slots are unchanged.
        """
        seeds: list[int | None] | None = None  # None: no slot takes a seed
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            first = _seed_int(self.env_id, seed)
            seeds = [first + slot for slot in range(self.num_envs)]
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(first)
        elif seed is not None:
            seeds = self._slot_seeds(seed)
        mask = self._reset_mask(options)
        if mask is None:
            slots = np.arange(self.num_envs)
            self._episodes.seed(seeds)
            self._episodes.reset_all()
            infos = self._step_infos()
        else:
            slots = np.flatnonzero(mask)
            if seeds is not None:  # only the restarting slots take their seeds
                seeds = [seed if restart else None for seed, restart in zip(seeds, mask, strict=True)]
            self._episodes.seed(seeds)
            self._episodes.begin(slots)
            infos = self._step_infos(mask.copy())
        if self.info_text:
            self._add_texts(infos, slots)
        return self.core.observe(), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every slot; ended slots restart as ``autoreset_mode`` says (see the module docstring)."""
        episodes = self._episodes
        if not episodes.started:
            raise gym.error.ResetNeeded(f"{self.env_id}: call reset() before step().")
        actions = _validate_actions(self.env_id, int(self.core.single_action_space.n), actions, (self.num_envs,))
        mode = self._autoreset_mode
        if mode is AutoresetMode.NEXT_STEP:
            rewards, terminated, truncated, restarting = episodes.step(actions)
        else:
            if episodes.ended.any():
                self._refuse_ended_slots()
            rewards, terminated, truncated, restarting = episodes.step(actions, autoreset=False)
            if mode is AutoresetMode.SAME_STEP:
                return self._restart_ended(rewards, terminated, truncated)
        infos = self._step_infos()
        ending = np.flatnonzero(episodes.ended)
        if ending.size:
            self._add_metrics(infos, ending, episodes.ended)
        if self.info_text:
            self._add_texts(infos, np.concatenate([ending, restarting]))
        return self.core.observe(), rewards, terminated, truncated, infos

    def _restart_ended(
        self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """SAME_STEP: keep the ending slots' last observation and info, then start their next episodes."""
        ended = self._episodes.ended.copy()  # begin() clears the flags in place
        ending = np.flatnonzero(ended)
        observations, step_info = self.core.observe(), _task_info(self.core)
        if not ending.size:
            return observations, rewards, terminated, truncated, self._step_infos(taken=step_info)
        # As SyncVectorEnv: one array per ending slot, else None. Its elements are views of
        # ``observations``, which is never handed out when every slot restarts (the batch is observed again).
        if len(ending) == self.num_envs:
            final_obs = np.fromiter(observations, dtype=object, count=self.num_envs)
        else:
            final_obs = np.empty(self.num_envs, dtype=object)
            final_obs[ending] = np.fromiter(observations[ending], dtype=object, count=len(ending))
        final_info: dict[str, Any] = {}
        running = ~ended
        few = len(ending) * _FEW_RESTARTS <= self.num_envs
        for key, values in step_info.items():  # the slots whose episode goes on are zeroed
            final = values.copy() if few else values  # with few restarts, step_info becomes the next infos
            final[running] = 0
            final_info[key], final_info[f"_{key}"] = final, ended.copy()
        self._add_metrics(final_info, ending, ended)
        if self.info_text:
            self._add_texts(final_info, ending)
        self._episodes.begin(ending)
        if few:
            # Only the restarted slots changed: observe them alone and write them over their last values.
            observations[ending] = self.core.observe_slots(ending)
            for key, values in _task_info(self.core, slots=ending).items():
                step_info[key][ending] = values
        else:  # many restarted: the whole batch again costs less than gathering and scattering most of it
            observations, step_info = self.core.observe(), _task_info(self.core)
        infos = self._step_infos(taken=step_info)
        if self.info_text:
            self._add_texts(infos, ending)
        infos["final_obs"], infos["_final_obs"] = final_obs, ended
        infos["final_info"], infos["_final_info"] = final_info, ended.copy()
        return observations, rewards, terminated, truncated, infos

    def _slot_seeds(self, seed: Any) -> list[int | None]:
        """A sequence of ``num_envs`` seeds (each None or an integer >= 0) as a list, or an error naming it."""
        if not isinstance(seed, (Sequence, np.ndarray)) or isinstance(seed, (str, bytes)) or np.ndim(seed) != 1:
            raise InvalidSeedError(
                f"{self.env_id}: reset(seed={short_repr(seed)}) is not a seed; expected None, an integer >= 0 "
                f"(slot i gets seed + i) or a sequence of {self.num_envs} seeds, one per slot, each None or an "
                "integer >= 0."
            )
        if len(seed) != self.num_envs:
            raise InvalidSeedError(
                f"{self.env_id}: reset got {len(seed)} seeds for {self.num_envs} envs; "
                "pass one int (slot i gets seed + i) or a list of num_envs seeds."
            )
        return [check_seed(self.env_id, item, f"seed[{slot}]") for slot, item in enumerate(seed)]

    def _refuse_ended_slots(self) -> None:
        slots = np.flatnonzero(self._episodes.ended)
        shown = ", ".join(str(slot) for slot in slots[:8]) + (f" and {len(slots) - 8} more" if len(slots) > 8 else "")
        raise gym.error.ResetNeeded(
            f"{self.env_id}: slot(s) {shown} ended and autoreset_mode is {self._autoreset_mode.value}, so they do "
            "not restart by themselves; call reset(options={'reset_mask': terminated | truncated}) to restart "
            "them before the next step."
        )

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray | None:
        """The ``reset_mask`` in ``options``, checked (None without one); other options are refused."""
        _check_options_type(self.env_id, options)
        if not options:
            return None
        _reject_options(self.env_id, {key: value for key, value in options.items() if key != "reset_mask"})
        mask = options["reset_mask"]
        expected = f"a numpy bool array of shape ({self.num_envs},) with True at the slots to restart"
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
            raise TypeError(f"{self.env_id}: options['reset_mask'] must be {expected}, got {got}.")
        if mask.shape != (self.num_envs,) or not mask.any():
            got = f"shape {mask.shape}" if mask.shape != (self.num_envs,) else "no True value"
            raise ValueError(f"{self.env_id}: options['reset_mask'] must be {expected}, got {got}.")
        if not self._episodes.started:
            raise gym.error.ResetNeeded(
                f"{self.env_id}: reset(options={{'reset_mask': ...}}) restarts slots of a running env; "
                "call reset() without a mask first."
            )
        return mask

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The task metrics that the step ending an episode puts in ``infos``."""
        return self.core.metric_names

    @property
    def episode_limit(self) -> int:
        """Steps after which an episode is truncated: the task's limit or a smaller ``max_episode_steps``."""
        return self._episodes.limit

    def _step_infos(self, present: np.ndarray | None = None, taken: dict[str, Any] | None = None) -> dict[str, Any]:
        """The core's per-step info for every slot (``present``: the slots whose values count).

        ``taken``: that info already taken with :func:`_task_info` (copies, which become the infos).
        """
        infos: dict[str, Any] = {}
        for key, values in (_task_info(self.core) if taken is None else taken).items():
            infos[key] = values
            infos[f"_{key}"] = self._all if present is None else present
        return infos

    def _add_metrics(self, infos: dict[str, Any], ending: np.ndarray, ended: np.ndarray) -> None:
        for key, values in task_metrics(self.core, ending).items():
            column = np.zeros(self.num_envs, dtype=values.dtype)
            column[ending] = values
            infos[key] = column
            infos[f"_{key}"] = ended.copy()

    def _add_texts(self, infos: dict[str, Any], slots: np.ndarray) -> None:
        texts = np.full(self.num_envs, None, dtype=object)
        mask = np.zeros(self.num_envs, dtype=bool)
        for slot in slots:
            texts[slot] = self.core.text(int(slot))
        mask[slots] = True
        infos["text"], infos["_text"] = texts, mask

    def render(self) -> tuple[str, ...] | None:
        """With ``render_mode="ansi"``, the text of every slot's current episode."""
        if self.render_mode is None:
            gym.logger.warn(f"{self.env_id}: render() called without render_mode; pass render_mode='ansi'.")
            return None
        return tuple(self.core.text(slot) for slot in range(self.num_envs))

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)``: the acts that make sense now (all True without a mask)."""
        mask = self.core.action_masks()
        n = int(self.core.single_action_space.n)
        return np.ones((self.num_envs, n), dtype=bool) if mask is None else mask


def parse_autoreset_mode(env_id: str, mode: Any) -> AutoresetMode:
    """``mode`` as an ``AutoresetMode``: the enum itself or its string value (``"NextStep"``, ...).

    Raises:
        ValueError: anything else, naming ``env_id`` and the accepted values.
    """
    if isinstance(mode, AutoresetMode):
        return mode
    for known in AutoresetMode:
        if isinstance(mode, str) and mode == known.value:
            return known
    values = ", ".join(repr(known.value) for known in AutoresetMode)
    raise ValueError(
        f"{env_id}: autoreset_mode={mode!r} is not an autoreset mode; expected a gymnasium.vector.AutoresetMode "
        f"or its value, one of {values} (SAME_STEP for SB3 and TorchRL, NEXT_STEP for CleanRL)."
    )


class MetricsContractError(TypeError):
    """A task's ``metrics()`` broke its contract: other keys than ``metric_names``, or not one value per slot."""


def task_metrics(core: TaskCore, slots: np.ndarray) -> dict[str, np.ndarray]:
    """``core.metrics(slots)``, checked: the keys ``metric_names`` (and ``end_info_names``), one value per slot.

    Leaderboards and the evaluation read ``metric_names`` to know which columns exist, so a task
    whose ``metrics()`` returns other keys would lose or invent columns without a word. The keys
    are compared at every call (a set comparison); the shapes at a core's first call, so that the
    check costs a step nothing measurable.

    Raises:
        MetricsContractError: the task broke the contract; the message names the task and the keys.
    """
    metrics = core.metrics(slots)
    if metrics.keys() != core._checked_metric_keys:
        _check_metrics(core, metrics, len(slots))
        core._checked_metric_keys = frozenset(metrics)
    return metrics


def _check_metrics(core: TaskCore, metrics: dict[str, np.ndarray], count: int) -> None:
    names = (*core.metric_names, *core.end_info_names)
    if len(metrics) != len(names) or metrics.keys() != set(names):
        raise MetricsContractError(
            f"{type(core).__name__} ({core.env_id}): metrics() returned the keys {sorted(metrics)}, but its "
            f"metric_names and end_info_names are {list(names)}; a task must return exactly those (fix the task)."
        )
    shared = sorted(metrics.keys() & core.step_info().keys())
    if shared:  # the infos hold both under one key: the step that ends an episode would lose one of them
        raise MetricsContractError(
            f"{type(core).__name__} ({core.env_id}): step_info() and metrics() both have the keys {shared}; "
            "at the step that ends an episode one would overwrite the other in info (fix the task: rename one)."
        )
    for key, values in metrics.items():
        if np.shape(values) != (count,):
            raise MetricsContractError(
                f"{type(core).__name__} ({core.env_id}): metrics()[{key!r}] has shape {np.shape(values)}; "
                f"expected ({count},), one value per ending slot (fix the task)."
            )


def _task_info(core: TaskCore, row: int | None = None, slots: np.ndarray | None = None) -> dict[str, Any]:
    """The core's per-step info, with the ``action_mask`` of every task that masks acts.

    Copies, which the caller owns: a core may hand out its state arrays here, and libraries write
    into the infos a step returns (TorchRL's SAME_STEP handling puts the final infos there).

    Args:
        core: the task.
        row: None for the arrays of every slot; a slot for its values alone (numpy scalars, or
            arrays for per-act values such as ``action_mask``), as the single env's info holds them.
        slots: the arrays of these slots alone (``len(slots)`` rows; the task's ``*_slots`` methods).
    """
    if row is not None:  # the single env: the task's own values of the row (see TaskCore.step_info_row)
        info = core.step_info_row(row)
        if "action_mask" not in info:
            masks = core.action_masks()
            if masks is not None:
                info["action_mask"] = masks[row].copy()
        return info
    info = core.step_info() if slots is None else core.step_info_slots(slots)
    if "action_mask" not in info:
        masks = core.action_masks() if slots is None else core.action_masks_slots(slots)
        if masks is not None:
            info = {**info, "action_mask": masks}
    return {key: np.array(values) for key, values in info.items()}


def check_seed(env_id: str, seed: Any, name: str = "seed") -> int | None:
    """A ``reset`` seed as a Python int (or None): a Python or numpy integer >= 0, never a bool, float or string.

    Raises:
        InvalidSeedError: anything else; the message names ``env_id`` and ``name``.
    """
    return None if seed is None else _seed_int(env_id, seed, name)


def _seed_int(env_id: str, seed: Any, name: str = "seed") -> int:
    """:func:`check_seed` of a seed that is not None."""
    try:
        return check_int(env_id, name, seed, 0, fix="pass None or a Python or numpy integer >= 0 to reset(seed=...)")
    except ValueError as error:
        raise InvalidSeedError(str(error)) from None


def _check_options_type(env_id: str, options: Any) -> None:
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(
            f"{env_id}: reset(options={short_repr(options)}) must be None or a dict, got {type(options).__name__}."
        )


def _reject_options(env_id: str, options: dict[str, Any] | None) -> None:
    _check_options_type(env_id, options)
    if options:
        raise ValueError(
            f"{env_id}: reset options {sorted(options)} are not supported; "
            "pass task settings as keyword arguments to gym.make instead."
        )
