"""The core's argument validators, their use by every task, and the metrics contract."""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given
from hypothesis import strategies as st

import nlp_envs  # noqa: F401 - registers the ids
from nlp_envs.classification import ClassificationCore
from nlp_envs.core import (
    REWARD_BOUND,
    CoreEnv,
    CoreVectorEnv,
    InvalidActionError,
    MetricsContractError,
    TaskCore,
    _drawn_arrays,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_probability,
    check_reward,
    count_nonzero,
    hash_keys,
    hashes_to_uniform,
)
from nlp_envs.dialogue.env import DialogueCore
from nlp_envs.next_word import NextWordCore
from nlp_envs.recommendation import RecommendationCore

ENV = "nlp_envs/Test-v0"

# --- the validators -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, np.True_, np.bool_(False)], ids=repr)
def test_a_bool_is_never_an_integer_nor_a_number(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^nlp_envs/Test-v0: size must be an integer >= 0, got (np\.)?\w+; "):
        check_int(ENV, "size", value, 0)
    with pytest.raises(ValueError, match="weight must be a finite number"):
        check_float(ENV, "weight", value)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        check_probability(ENV, "p", value)


@pytest.mark.parametrize("value", [np.int8(3), np.int64(3), np.uint64(3), 3], ids=repr)
def test_numpy_integers_are_accepted_as_python_ints(value: Any) -> None:
    result = check_int(ENV, "size", value, 1, 10)
    assert result == 3 and type(result) is int
    number = check_float(ENV, "weight", value)
    assert number == 3.0 and type(number) is float


@pytest.mark.parametrize("value", [np.float32(0.25), np.float64(0.25), 0.25], ids=repr)
def test_numpy_floats_are_accepted_as_python_floats(value: Any) -> None:
    result = check_probability(ENV, "p", value)
    assert result == 0.25 and type(result) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")], ids=repr)
def test_non_finite_numbers_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="weight must be a finite number"):
        check_float(ENV, "weight", value)
    with pytest.raises(ValueError, match="cost must be a finite number in"):
        check_reward(ENV, "cost", value)


@pytest.mark.parametrize("value", [2.0, 2.5, "2", [2], None, 2 + 0j], ids=repr)
def test_an_integer_is_not_a_float_string_or_sequence(value: Any) -> None:
    with pytest.raises(ValueError, match="size must be an integer"):
        check_int(ENV, "size", value, 1)


@pytest.mark.parametrize("value", ["1.0", [], [[1.0]], {}, None, 1 + 0j, np.array([1.0])], ids=repr)
def test_a_number_is_not_a_string_sequence_or_complex(value: Any) -> None:
    with pytest.raises(ValueError, match="weight must be a finite number"):
        check_float(ENV, "weight", value)


def test_the_bounds_are_named_and_inclusive() -> None:
    assert check_int(ENV, "turns", 1, 1, 10_000) == 1 and check_int(ENV, "turns", 10_000, 1, 10_000) == 10_000
    with pytest.raises(ValueError, match=r"turns must be an integer >= 1 and <= 10,000, got 10001; "):
        check_int(ENV, "turns", 10_001, 1, 10_000)
    with pytest.raises(ValueError, match=r"turns must be an integer >= 1 and <= 10,000, got 0; "):
        check_int(ENV, "turns", 0, 1, 10_000)
    assert check_reward(ENV, "r", REWARD_BOUND) == REWARD_BOUND
    with pytest.raises(ValueError, match=r"r must be a finite number in \[-1e\+06, 1e\+06\], got 1e\+308; .*rescale"):
        check_reward(ENV, "r", 1e308)
    with pytest.raises(ValueError, match=r"budget must be a positive finite number, got 0"):
        check_float(ENV, "budget", 0, 0.0, low_open=True)
    assert check_float(ENV, "budget", 1e-9, 0.0, low_open=True) == 1e-9


def test_a_huge_structure_is_shown_short_and_on_one_line() -> None:
    with pytest.raises(ValueError) as raised:
        check_int(ENV, "size", list(range(10_000)), 1)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300 and "..." in message


def test_choices_and_bools_are_exact() -> None:
    assert check_choice(ENV, "mode", "a", ("a", "b")) == "a"
    for bad in ("c", ["a"], None, 1):
        with pytest.raises(ValueError, match=r"mode=.* is not one of \('a', 'b'\); pick one of them"):
            check_choice(ENV, "mode", bad, ("a", "b"))
    with pytest.raises(ValueError, match="flag=1 is not one of"):
        check_choice(ENV, "flag", 1, (True, False))  # 1 == True, but it is not a bool
    assert check_bool(ENV, "flag", np.True_) is True
    assert check_bool(ENV, "flag", None, optional=True) is None
    for bad in (1, "yes", None, []):
        with pytest.raises(ValueError, match="flag must be True or False, got"):
            check_bool(ENV, "flag", bad)


# --- every task uses them ----------------------------------------------------------------------------

TASKS = {
    "NextWord": "nlp_envs/NextWordEasy-v0",
    "TextClassification": "nlp_envs/SentimentBandit-v0",
    "Dialogue": "nlp_envs/DialogueEasy-v0",
    "Recommendation": "nlp_envs/Recommendation-v0",
}
BAD_KWARGS = [
    # bool is never an integer or a number (NextWord took context=True as 1, beta=True as 1.0)
    ("NextWord", "context", True, "context must be an integer"),
    ("NextWord", "beta", True, "beta must be a finite number"),
    ("NextWord", "early_end_penalty", True, "early_end_penalty must be a finite number"),
    ("TextClassification", "vocab_size", True, "vocab_size must be an integer"),
    ("TextClassification", "correct_reward", True, "correct_reward must be a finite number"),
    ("Dialogue", "max_turns", True, "max_turns must be an integer"),
    ("Dialogue", "turn_cost", True, "turn_cost must be a finite number"),
    ("Dialogue", "error_rate", True, "error_rate must be a probability"),
    ("Recommendation", "max_steps", True, "max_steps must be an integer"),
    ("Recommendation", "info_titles", "yes", "info_titles must be True, False or None"),
    # empty and nested values ("truth value of an empty array" from NextWord before)
    ("NextWord", "beta", [], "beta must be a finite number"),
    ("NextWord", "beta", [[1.0]], "beta must be a finite number"),
    ("NextWord", "early_end_penalty", [], "early_end_penalty must be a finite number"),
    ("NextWord", "corpus", "", r"corpus='' is neither 'chitchat' nor the path of a file with suffix"),
    # overflow at step (beta=1e308)
    ("NextWord", "beta", 1e308, r"beta must be a finite number in \[-1e\+06, 1e\+06\]"),
    # huge sizes: MemoryError, "Maximum allowed dimension exceeded", OverflowError or a minute of work before
    ("NextWord", "context", 10**15, "context must be an integer >= 1 and <= 1,000"),
    ("NextWord", "prompt_words", 2**64, "prompt_words must be an integer >= 1 and <= 1,000"),
    ("NextWord", "max_words", 10**15, "max_words must be an integer >= 1 and <= 10,000"),
    ("TextClassification", "max_words", 10**15, "max_words must be an integer >= 1 and <= 1,000,000"),
    ("TextClassification", "vocab_size", 2**64, "vocab_size must be an integer >= 3 and <= 10,000,000"),
    ("TextClassification", "embedding_dim", 10**15, "embedding_dim must be an integer >= 1 and <= 4,096"),
    ("Dialogue", "max_turns", 10**15, "max_turns must be an integer >= 1 and <= 10,000"),
    ("Dialogue", "patience", 2**64, "patience must be an integer >= 1 and <= 10,000"),
    ("Recommendation", "max_steps", 10**15, "max_steps must be an integer >= 1 and <= 10,000"),
    ("Recommendation", "num_candidates", 2**64, "num_candidates must be an integer >= 2 and <= 65,536"),
]


@pytest.mark.parametrize(
    ("task", "name", "value", "match"), BAD_KWARGS, ids=[f"{t}-{n}={v!r:.12}" for t, n, v, _ in BAD_KWARGS]
)
def test_every_task_refuses_bad_kwargs_by_name_at_once(task: str, name: str, value: Any, match: str) -> None:
    start = time.process_time()
    with pytest.raises(ValueError, match=match) as raised:
        gym.make(TASKS[task], **{name: value})
    assert time.process_time() - start < 1.0, "refused only after building"
    assert "\n" not in str(raised.value) and "; " in str(raised.value)  # what is expected; then how to fix


@pytest.mark.parametrize(
    ("core", "kwargs"),
    [
        (NextWordCore, {"vocab_size": np.int64(12), "context": np.int32(2), "beta": np.float32(0.5)}),
        (ClassificationCore, {"max_words": np.int64(50), "read_cost": np.float32(0.01), "bandit": np.True_}),
        (DialogueCore, {"max_turns": np.int16(10), "error_rate": np.float32(0.1)}),
        (RecommendationCore, {"max_steps": np.uint32(5), "budget": np.float64(3.0)}),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_numpy_scalars_build_like_python_ones(core: type[TaskCore], kwargs: dict[str, Any]) -> None:
    built = core(num_envs=np.int64(2), **kwargs)
    assert built.num_envs == 2 and type(built.num_envs) is int


def test_num_envs_true_is_refused() -> None:
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1, got True"):
        gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=True, vectorization_mode="vector_entry_point")


# --- the counter-based hash ------------------------------------------------------------------------

UINT64 = st.integers(0, 2**64 - 1)
COUNTER = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(-(2**63), 2**63 - 1).map(lambda value: np.array([value])),
    st.integers(0, 2**32 - 1).map(lambda value: np.array(value, dtype=np.uint32)),
)


@given(key=UINT64, other=UINT64, counters=st.lists(COUNTER, max_size=4))
def test_one_key_hashes_as_in_a_batch(key: int, other: int, counters: list[Any]) -> None:
    """The single env's one-key path (Python integers) gives the batched numpy path's numbers."""
    alone = hash_keys(np.array([key], dtype=np.uint64), *counters)
    batched = hash_keys(np.array([key, other], dtype=np.uint64), *counters)
    assert alone.dtype == np.uint64 and alone.shape == (1,)
    assert alone[0] == batched[0]


def test_the_hash_is_splitmix64() -> None:
    """Pinned values: splitmix64's first output from state 0 (a key of 0, counter 0) and a mixed one."""
    assert hash_keys(np.zeros(1, dtype=np.uint64), 0)[0] == 0xE220A8397B1DCDAF
    assert hash_keys(np.zeros(2, dtype=np.uint64), 0).tolist() == [0xE220A8397B1DCDAF] * 2
    assert (
        hash_keys(np.array([7], dtype=np.uint64), 3, np.array([5]))[0]
        == hash_keys(np.array([7, 7], dtype=np.uint64), np.array([3, 3]), 5)[0]
    )


# --- the metrics contract ------------------------------------------------------------------------------


class _CountingCore(TaskCore):
    """A task of two steps whose metrics() returns ``returned`` (the contract broken on purpose)."""

    env_id = "nlp_envs/Counting-v0"
    metric_names = ("steps",)
    returned: ClassVar[tuple[str, ...]] = ("steps",)
    length: ClassVar[int | None] = None

    def __init__(self, num_envs: int) -> None:
        super().__init__(num_envs)
        self.single_observation_space = spaces.Box(0.0, 10.0, shape=(1,))
        self.single_action_space = spaces.Discrete(2)
        self.afterstate_space = self.single_observation_space
        self.max_steps = 5
        self.steps = np.zeros(num_envs)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        self.steps[slots] = 0

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.steps += 1
        return np.zeros(self.num_envs), self.steps >= 2

    def observe(self) -> np.ndarray:
        return self.steps[:, None].astype(np.float32)

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        size = len(slots) if self.length is None else self.length
        return {name: np.zeros(size) for name in self.returned}

    def text(self, slot: int) -> str:
        return ""

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return observations + 1


def _views(core: type[TaskCore]) -> list[Any]:
    single = type("SingleView", (CoreEnv,), {"core_class": core})()
    vector = type("VectorView", (CoreVectorEnv,), {"core_class": core})(num_envs=3)
    return [single, vector]


def _run_an_episode(env: Any) -> dict[str, Any]:
    env.reset(seed=0)
    actions = 0 if isinstance(env, CoreEnv) else np.zeros(3, dtype=np.int64)
    env.step(actions)
    return env.step(actions)[-1]


def test_metrics_with_exactly_the_metric_names_pass() -> None:
    for env in _views(_CountingCore):
        assert "steps" in _run_an_episode(env)


@pytest.mark.parametrize(
    ("returned", "length", "match"),
    [
        ((), None, r"metrics\(\) returned the keys \[\], but its metric_names and end_info_names are \['steps'\]"),
        (("steps", "extra"), None, r"metrics\(\) returned the keys \['extra', 'steps'\]"),
        (("step",), None, r"metrics\(\) returned the keys \['step'\]"),
        (("steps",), 7, r"metrics\(\)\['steps'\] has shape \(7,\); expected \(\d,\), one value per ending slot"),
    ],
    ids=["missing", "extra", "misspelt", "wrong-length"],
)
def test_a_task_that_breaks_the_metrics_contract_is_named(
    returned: tuple[str, ...], length: int | None, match: str
) -> None:
    bad = type("BadCore", (_CountingCore,), {"returned": returned, "length": length})
    for env in _views(bad):
        with pytest.raises(MetricsContractError, match=rf"^BadCore \(nlp_envs/Counting-v0\): {match}"):
            _run_an_episode(env)


def test_a_task_whose_step_info_and_metrics_share_a_key_is_named() -> None:
    """At the step that ends an episode both would go into one info key: one would be lost without a word."""

    def step_info(self: TaskCore) -> dict[str, np.ndarray]:
        return {"steps": np.zeros(self.num_envs)}

    clashing = type("ClashingCore", (_CountingCore,), {"step_info": step_info})
    for env in _views(clashing):
        expected = (
            r"^ClashingCore \(nlp_envs/Counting-v0\): step_info\(\) and metrics\(\) both have the keys \['steps'\]"
        )
        with pytest.raises(MetricsContractError, match=expected):
            _run_an_episode(env)


def test_end_info_names_are_part_of_the_contract() -> None:
    declared = type("DeclaredCore", (_CountingCore,), {"returned": ("steps", "label"), "end_info_names": ("label",)})
    for env in _views(declared):
        info = _run_an_episode(env)
        assert "steps" in info and "label" in info


# --- begins drawn ahead (the single env's resets) ------------------------------------------------------


class _KeyedCore(_CountingCore):
    """Its observation is a uniform drawn from its episode's key at begin."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(num_envs)
        self.start = np.zeros(num_envs)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        self.steps[slots] = 0
        self.start[slots] = hashes_to_uniform(keys)

    def observe(self) -> np.ndarray:
        return self.start[:, None].astype(np.float32)


class _DrawingCore(_KeyedCore):
    """The same task with its begin split in two; it records how many keys each draw had."""

    draw_sizes: ClassVar[list[int]] = []

    def draw_begins(self, keys: np.ndarray) -> tuple[np.ndarray, ...]:
        self.draw_sizes.append(len(keys))
        return (hashes_to_uniform(keys),)

    def begin_drawn(self, slots: np.ndarray, drawn: tuple[np.ndarray, ...]) -> None:
        self.steps[slots] = 0
        self.start[slots] = drawn[0]

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        self.begin_drawn(slots, self.draw_begins(keys))


def _first_observations(core: type[TaskCore], seeds: list[int | None]) -> list[float]:
    env = _views(core)[0]
    return [float(env.reset(seed=seed)[0][0]) for seed in seeds]


def test_the_single_env_draws_its_begins_ahead_and_starts_the_same_episodes() -> None:
    """Batches of 1, 2, 4 ... 64 episodes, from one again after a reseed; the episodes of the plain begin."""
    seeds: list[int | None] = [3] + [None] * 99 + [5] + [None] * 19 + [5, 5, 6, 6]
    _DrawingCore.draw_sizes.clear()
    assert _first_observations(_DrawingCore, seeds) == _first_observations(_KeyedCore, seeds)
    # seed 3: 100 episodes; seed 5: 20, then its episode 0 again (a batch of 32 from there); seed 6
    # twice: one draw, whose row starts the second episode 0 too.
    assert _DrawingCore.draw_sizes == [1, 2, 4, 8, 16, 32, 64, 1, 2, 4, 8, 16, 32, 1]
    vector = _views(_DrawingCore)[1]
    _DrawingCore.draw_sizes.clear()
    vector.reset(seed=0)
    assert _DrawingCore.draw_sizes == [3]  # a vector env of 3 slots begins as before


def test_a_core_that_does_not_split_its_begin_starts_episode_k_from_its_key() -> None:
    """Its keys are drawn ahead (1, 2, 4 ... 64 at a time): episode k of a seeded slot starts from hash(slot key, k)."""
    env = _views(_KeyedCore)[0]
    starts = [float(env.reset(seed=7)[0][0])] + [float(env.reset()[0][0]) for _ in range(69)]
    slot_keys = np.repeat(env._episodes.slot_keys[:1], 70)
    assert starts == hashes_to_uniform(hash_keys(slot_keys, np.arange(70, dtype=np.uint64))).astype(np.float32).tolist()


class _ActionCore(_CountingCore):
    """It observes the last action it was given."""

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.steps = actions.astype(np.float64)
        return np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)


def test_the_single_env_takes_every_integer_action_and_still_refuses_the_rest() -> None:
    """A valid action is taken from a kept array once used: a bool, a float or an array of it is still refused."""
    env = _views(_ActionCore)[0]
    env.reset(seed=0)
    for action in (1, np.int64(1), np.uint8(0), 0, 1):
        assert env.step(action)[0][0] == action
    for bad in (True, False, 1.0, np.float64(0.0), np.array([1]), 2, -1):
        with pytest.raises(InvalidActionError, match="Counting"):
            env.step(bad)
    assert env.step(np.int32(1))[0][0] == 1


def test_begins_drawn_ahead_are_read_only_and_a_half_split_task_is_named() -> None:
    def writing(self: _DrawingCore, slots: np.ndarray, drawn: tuple[np.ndarray, ...]) -> None:
        drawn[0][0] = 0.5

    with pytest.raises(ValueError, match="read-only"):
        _views(type("WritingCore", (_DrawingCore,), {"begin_drawn": writing}))[0].reset(seed=0)
    with pytest.raises(TypeError, match=r"^HalfCore \(nlp_envs/Counting-v0\): draw_begins\(\) of 1 keys returned"):
        _views(type("HalfCore", (_DrawingCore,), {"draw_begins": lambda self, keys: [keys]}))[0].reset(seed=0)
    # Nothing drawn, or an empty record in the draw.
    for empty in (lambda self, keys: (), lambda self, keys: ((), hashes_to_uniform(keys))):
        with pytest.raises(TypeError, match=r"^EmptyCore \(nlp_envs/Counting-v0\): draw_begins\(\) of 1 keys returned"):
            _views(type("EmptyCore", (_DrawingCore,), {"draw_begins": empty}))[0].reset(seed=0)
    with pytest.raises(TypeError, match=r"^OneHalfCore \(nlp_envs/Counting-v0\) overrides only one of draw_begins"):
        _views(type("OneHalfCore", (_KeyedCore,), {"begin_drawn": _DrawingCore.begin_drawn}))


def _ids_drawing_ahead() -> list[str]:
    """The registered ids whose task splits its begin (their cores draw begins ahead)."""
    ids = []
    for env_id in nlp_envs.env_ids():
        core = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point).core_class
        if core.draw_begins is not TaskCore.draw_begins:
            ids.append(env_id)
    return ids


@pytest.mark.parametrize("env_id", _ids_drawing_ahead())
def test_a_task_drawing_ahead_starts_each_episode_as_its_plain_begin_does(env_id: str) -> None:
    """Row i of a draw is the draw of key i alone, and 70 single-env resets (draws of 1 to 64 episodes)
    start the episodes that ``begin`` with each episode's key starts in a vector env's slot."""
    single = gym.make(env_id)
    single.reset(seed=4)
    core = single.unwrapped.core
    keys = hash_keys(np.arange(70, dtype=np.uint64), 3)  # more keys than the single env draws ahead
    drawn = core.draw_begins(keys)
    for row in (*range(6), 69):
        alone = core.draw_begins(keys[row : row + 1])
        pairs = zip(_drawn_arrays(drawn), _drawn_arrays(alone), strict=True)
        assert all(np.array_equal(array[row : row + 1], own) for array, own in pairs)
    vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point").unwrapped.core
    slot_key = single.unwrapped._episodes.slot_keys[:1]
    for episode in range(70):
        observation = single.reset()[0] if episode else core.observe()[0]
        vector.begin(np.array([1]), hash_keys(slot_key, episode))
        assert np.array_equal(observation, vector.observe()[1]), f"episode {episode}"


# --- the per-slot views of a core (SAME_STEP autoreset uses them) ------------------------------------


@pytest.mark.parametrize("env_id", nlp_envs.env_ids())
def test_the_per_slot_views_equal_the_whole_batch_indexed(env_id: str) -> None:
    """``observe_slots``, ``step_info_slots`` and ``action_masks_slots`` give the whole batch's rows."""
    env = gym.make_vec(env_id, num_envs=6, vectorization_mode="vector_entry_point")
    core = env.unwrapped.core
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    for _ in range(6):
        for slots in (np.arange(6), np.array([4]), np.sort(rng.choice(6, size=3, replace=False))):
            whole, part = core.observe(), core.observe_slots(slots)
            assert part.dtype == whole.dtype
            np.testing.assert_array_equal(part, whole[slots])
            info, part_info = core.step_info(), core.step_info_slots(slots)
            assert part_info.keys() == info.keys()
            for key, values in info.items():
                np.testing.assert_array_equal(part_info[key], np.asarray(values)[slots], err_msg=key)
            masks, part_masks = core.action_masks(), core.action_masks_slots(slots)
            assert (masks is None) == (part_masks is None)
            if masks is not None:
                np.testing.assert_array_equal(part_masks, masks[slots])
        env.step(rng.integers(env.single_action_space.n, size=6))
    env.close()


@pytest.mark.parametrize("env_id", nlp_envs.env_ids())
def test_the_single_env_info_row_is_step_info_row_owned(env_id: str) -> None:
    """``step_info_row`` gives ``step_info()``'s row: the same keys, types, dtypes and values, in arrays of its own."""
    env = gym.make(env_id)
    core = env.unwrapped.core
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    for _ in range(30):
        row, whole = core.step_info_row(0), core.step_info()
        assert list(row) == list(whole)
        for key, values in whole.items():
            expected, got = np.asarray(values)[0], row[key]
            assert type(got) is type(expected) and repr(got) == repr(expected), key
            if isinstance(got, np.ndarray):
                assert not any(
                    np.shares_memory(got, array) for array in whole.values() if isinstance(array, np.ndarray)
                )
        _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            env.reset()
    env.close()


def test_a_reset_without_seed_seeds_only_the_slots_never_seeded() -> None:
    """A first ``reset()`` draws every slot a key from fresh entropy; later ones keep the keys and go on."""
    env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=5, vectorization_mode="vector_entry_point")
    episodes = env.unwrapped._episodes
    env.reset()
    keys = episodes.slot_keys.copy()
    assert episodes.seeded.all() and len(set(keys.tolist())) == 5
    env.reset(options={"reset_mask": np.array([True, False, True, False, False])})
    env.reset()
    np.testing.assert_array_equal(episodes.slot_keys, keys)
    assert episodes.episodes.tolist() == [3, 2, 3, 2, 2]
    env.reset(seed=[None, 9, None, None, None])
    assert (episodes.slot_keys != keys).tolist() == [False, True, False, False, False]
    assert episodes.episodes.tolist() == [4, 1, 4, 3, 3]


def test_count_nonzero_counts_as_numpy_does() -> None:
    for array in (np.zeros(1, bool), np.ones(3, bool), np.array([[0, 2], [3, 0]]), np.zeros(0), np.eye(3)[:, 1]):
        got = count_nonzero(array)
        assert got == np.count_nonzero(array) and type(got) is type(np.count_nonzero(array))
