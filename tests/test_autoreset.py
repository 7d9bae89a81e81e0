"""Gymnasium's three autoreset modes on the native vector env: a literal truth table, then every env.

The truth table runs a counting core whose episodes last a known number of steps (slot 0 ends
after 2, slot 1 after 3 by termination and truncation at once, slot 2 only by the 3-step limit),
writes every transition of NEXT_STEP, SAME_STEP and DISABLED out, and checks Gymnasium's
``SyncVectorEnv`` over the single env gives the same table. Then each registered env must give
``SyncVectorEnv``'s trajectories and infos in each mode, seed for seed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from nlp_envs.core import CoreEnv, CoreVectorEnv, TaskCore
from tests.conftest import ENV_IDS

NEXT, SAME, DISABLED = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED
T, F = True, False


class CountingCore(TaskCore):
    """Observation ``[episode, step]`` per slot (episodes counted from 1); reward = the step reached.

    Slot ``i`` terminates after ``LENGTHS[i]`` steps; ``max_steps = 3`` truncates the rest.
    """

    env_id = "test/Counting-v0"
    metric_names = ("steps",)
    LENGTHS: ClassVar[tuple[int, ...]] = (2, 3, 99)

    def __init__(self, num_envs: int, first_slot: int = 0) -> None:
        super().__init__(num_envs)
        self.single_observation_space = gym.spaces.Box(0, 99, (2,), np.int64)
        self.single_action_space = gym.spaces.Discrete(2)
        self.afterstate_space = self.single_observation_space
        self.max_steps = 3
        self.lengths = np.array(self.LENGTHS[first_slot : first_slot + num_envs])
        self.episode = np.zeros(num_envs, np.int64)
        self.t = np.zeros(num_envs, np.int64)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        self.episode[slots] += 1
        self.t[slots] = 0

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.t += 1
        return self.t.astype(np.float64), self.t >= self.lengths

    def observe(self) -> np.ndarray:
        return np.stack([self.episode, self.t], axis=1)

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        return {"steps": self.t[slots].copy()}

    def step_info(self) -> dict[str, np.ndarray]:
        return {"t": self.t.copy()}

    def text(self, slot: int) -> str:
        return f"episode {self.episode[slot]} step {self.t[slot]}"

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return observations


class CountingVectorEnv(CoreVectorEnv):
    core_class = CountingCore


def counting_env(slot: int) -> gym.Env:
    """The single env of slot ``slot``'s episode lengths, for SyncVectorEnv."""

    class CountingEnv(CoreEnv):
        core_class = CountingCore

    return CountingEnv(first_slot=slot)


def mask(*values: bool) -> np.ndarray:
    return np.array(values, dtype=bool)


def objects(*values: Any) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [None if value is None else np.array(value) for value in values]
    return array


def assert_infos_equal(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Same keys, same masks, same values where the masks are True (nested dicts and object arrays too)."""
    assert sorted(actual) == sorted(expected), where
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_infos_equal(actual[key], value, f"{where}[{key!r}]")
        elif key.startswith("_"):
            np.testing.assert_array_equal(actual[key], value, err_msg=f"{where}[{key!r}]")
        else:
            present = expected[f"_{key}"]
            for got, want in zip(actual[key][present], value[present], strict=True):
                np.testing.assert_array_equal(got, want, err_msg=f"{where}[{key!r}]")


def without_text(infos: dict[str, Any]) -> dict[str, Any]:
    """The infos without ``text`` (the single env writes it every step, the vector env only at the ends)."""
    return {
        key: without_text(value) if isinstance(value, dict) else value
        for key, value in infos.items()
        if key not in ("text", "_text")
    }


def ended(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    return np.logical_or(terminated, truncated)


ZERO = np.zeros(3, np.int64)
RESET = ([[1, 0], [1, 0], [1, 0]], {"t": [0, 0, 0], "_t": mask(T, T, T)})
# Each row: what step() returns: observations, rewards, terminated, truncated, infos.
TRUTH_TABLE: dict[AutoresetMode, list[tuple]] = {
    NEXT: [
        ([[1, 1], [1, 1], [1, 1]], [1, 1, 1], [F, F, F], [F, F, F], {"t": [1, 1, 1], "_t": mask(T, T, T)}),
        # slot 0 terminates: its metrics come with this step
        (
            [[1, 2], [1, 2], [1, 2]],
            [2, 2, 2],
            [T, F, F],
            [F, F, F],
            {"t": [2, 2, 2], "_t": mask(T, T, T), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
        ),
        # slot 0 restarts (reward 0, its action ignored); slot 1 terminates at the limit (both flags, as
        # TimeLimit does), slot 2 is truncated
        (
            [[2, 0], [1, 3], [1, 3]],
            [0, 3, 3],
            [F, T, F],
            [F, T, T],
            {"t": [0, 3, 3], "_t": mask(T, T, T), "steps": [0, 3, 3], "_steps": mask(F, T, T)},
        ),
        ([[2, 1], [2, 0], [2, 0]], [1, 0, 0], [F, F, F], [F, F, F], {"t": [1, 0, 0], "_t": mask(T, T, T)}),
        (
            [[2, 2], [2, 1], [2, 1]],
            [2, 1, 1],
            [T, F, F],
            [F, F, F],
            {"t": [2, 1, 1], "_t": mask(T, T, T), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
        ),
        ([[3, 0], [2, 2], [2, 2]], [0, 2, 2], [F, F, F], [F, F, F], {"t": [0, 2, 2], "_t": mask(T, T, T)}),
    ],
    SAME: [
        ([[1, 1], [1, 1], [1, 1]], [1, 1, 1], [F, F, F], [F, F, F], {"t": [1, 1, 1], "_t": mask(T, T, T)}),
        # slot 0 terminates and starts episode 2 in the same step; its last observation and info are final_*
        (
            [[2, 0], [1, 2], [1, 2]],
            [2, 2, 2],
            [T, F, F],
            [F, F, F],
            {
                "t": [0, 2, 2],
                "_t": mask(T, T, T),
                "final_obs": objects([1, 2], None, None),
                "_final_obs": mask(T, F, F),
                "final_info": {"t": [2, 0, 0], "_t": mask(T, F, F), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
                "_final_info": mask(T, F, F),
            },
        ),
        (
            [[2, 1], [2, 0], [2, 0]],
            [1, 3, 3],
            [F, T, F],
            [F, T, T],
            {
                "t": [1, 0, 0],
                "_t": mask(T, T, T),
                "final_obs": objects(None, [1, 3], [1, 3]),
                "_final_obs": mask(F, T, T),
                "final_info": {"t": [0, 3, 3], "_t": mask(F, T, T), "steps": [0, 3, 3], "_steps": mask(F, T, T)},
                "_final_info": mask(F, T, T),
            },
        ),
        (
            [[3, 0], [2, 1], [2, 1]],
            [2, 1, 1],
            [T, F, F],
            [F, F, F],
            {
                "t": [0, 1, 1],
                "_t": mask(T, T, T),
                "final_obs": objects([2, 2], None, None),
                "_final_obs": mask(T, F, F),
                "final_info": {"t": [2, 0, 0], "_t": mask(T, F, F), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
                "_final_info": mask(T, F, F),
            },
        ),
        ([[3, 1], [2, 2], [2, 2]], [1, 2, 2], [F, F, F], [F, F, F], {"t": [1, 2, 2], "_t": mask(T, T, T)}),
    ],
    # DISABLED rows that are a dict are reset(options={"reset_mask": ...}) calls: mask in, what reset returns.
    DISABLED: [
        ([[1, 1], [1, 1], [1, 1]], [1, 1, 1], [F, F, F], [F, F, F], {"t": [1, 1, 1], "_t": mask(T, T, T)}),
        (
            [[1, 2], [1, 2], [1, 2]],
            [2, 2, 2],
            [T, F, F],
            [F, F, F],
            {"t": [2, 2, 2], "_t": mask(T, T, T), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
        ),
        # slot 0 stays ended until the user restarts it; the other slots keep their observations
        {"reset_mask": mask(T, F, F), "obs": [[2, 0], [1, 2], [1, 2]], "infos": {"t": [0, 2, 2], "_t": mask(T, F, F)}},
        (
            [[2, 1], [1, 3], [1, 3]],
            [1, 3, 3],
            [F, T, F],
            [F, T, T],
            {"t": [1, 3, 3], "_t": mask(T, T, T), "steps": [0, 3, 3], "_steps": mask(F, T, T)},
        ),
        {"reset_mask": mask(F, T, T), "obs": [[2, 1], [2, 0], [2, 0]], "infos": {"t": [1, 0, 0], "_t": mask(F, T, T)}},
        (
            [[2, 2], [2, 1], [2, 1]],
            [2, 1, 1],
            [T, F, F],
            [F, F, F],
            {"t": [2, 1, 1], "_t": mask(T, T, T), "steps": [2, 0, 0], "_steps": mask(T, F, F)},
        ),
    ],
}


def as_arrays(infos: dict[str, Any]) -> dict[str, Any]:
    return {
        key: as_arrays(value)
        if isinstance(value, dict)
        else value
        if isinstance(value, np.ndarray)
        else np.array(value)
        for key, value in infos.items()
    }


def check_row(env: Any, row: tuple | dict, where: str) -> None:
    if isinstance(row, dict):
        observations, infos = env.reset(options={"reset_mask": row["reset_mask"].copy()})
        np.testing.assert_array_equal(observations, row["obs"], err_msg=where)
        assert_infos_equal(without_text(infos), as_arrays(row["infos"]), where)
        return
    observations, rewards, terminated, truncated, infos = env.step(ZERO)
    expected_obs, expected_rewards, expected_terminated, expected_truncated, expected_infos = row
    np.testing.assert_array_equal(observations, expected_obs, err_msg=where)
    np.testing.assert_array_equal(rewards, expected_rewards, err_msg=where)
    np.testing.assert_array_equal(terminated, expected_terminated, err_msg=where)
    np.testing.assert_array_equal(truncated, expected_truncated, err_msg=where)
    assert_infos_equal(without_text(infos), as_arrays(expected_infos), where)


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda mode: mode.value)
def test_autoreset_truth_table(mode: AutoresetMode) -> None:
    native = CountingVectorEnv(3, autoreset_mode=mode)
    sync = SyncVectorEnv([lambda slot=slot: counting_env(slot) for slot in range(3)], autoreset_mode=mode)
    for name, env in (("native", native), ("SyncVectorEnv", sync)):
        observations, infos = env.reset(seed=0)
        np.testing.assert_array_equal(observations, RESET[0])
        assert_infos_equal(without_text(infos), as_arrays(RESET[1]), f"{name} reset")
        for number, row in enumerate(TRUTH_TABLE[mode], start=1):
            check_row(env, row, f"{name} {mode.value} row {number}")


def test_disabled_refuses_to_step_an_ended_slot_until_reset_mask_restarts_it() -> None:
    env = CountingVectorEnv(3, autoreset_mode="Disabled")
    env.reset(seed=0)
    env.step(ZERO)
    env.step(ZERO)  # slot 0 terminates
    with pytest.raises(gym.error.ResetNeeded, match=r"slot\(s\) 0 ended and autoreset_mode is Disabled.*reset_mask"):
        env.step(ZERO)
    env.reset(options={"reset_mask": mask(T, F, F)})
    observations, *_ = env.step(ZERO)
    np.testing.assert_array_equal(observations, [[2, 1], [1, 3], [1, 3]])


def test_text_goes_with_the_episode_it_belongs_to_in_same_step() -> None:
    env = CountingVectorEnv(3, autoreset_mode=SAME, info_text=True)
    env.reset(seed=0)
    env.step(ZERO)
    _, _, _, _, infos = env.step(ZERO)  # slot 0 ends and restarts
    assert infos["final_info"]["text"][0] == "episode 1 step 2"
    assert infos["text"][0] == "episode 2 step 0"
    np.testing.assert_array_equal(infos["_text"], [T, F, F])


@pytest.mark.parametrize(
    ("spelling", "mode"),
    [(AutoresetMode.SAME_STEP, SAME), ("SameStep", SAME), ("Disabled", DISABLED), ("NextStep", NEXT)],
)
def test_make_vec_routes_autoreset_mode_to_the_native_env(spelling: Any, mode: AutoresetMode) -> None:
    env_id = "nlp_envs/NextWordEasy-v0"
    for vectorization_mode in ("vector_entry_point", None):  # None: Gymnasium picks the vector entry point
        env = gym.make_vec(env_id, num_envs=2, vectorization_mode=vectorization_mode, autoreset_mode=spelling)
        assert isinstance(env, CoreVectorEnv)
        assert env.autoreset_mode is mode and env.metadata["autoreset_mode"] is mode
        again = gym.make_vec(env.spec)  # the spec Gymnasium records remakes the same env
        assert again.autoreset_mode is mode
    # vector_kwargs is Gymnasium's spelling for SyncVectorEnv; for a vector entry point it refuses it.
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": spelling})
    assert sync.metadata["autoreset_mode"] is mode
    with pytest.raises(gym.error.Error, match="only through kwargs"):
        gym.make_vec(
            env_id, num_envs=2, vectorization_mode="vector_entry_point", vector_kwargs={"autoreset_mode": spelling}
        )
    assert CoreVectorEnv.metadata["autoreset_mode"] is NEXT  # the class default is left alone


@pytest.mark.parametrize("bad", ["same_step", "SAME_STEP", None, 1, ["SameStep"]])
def test_unknown_autoreset_mode_is_refused_by_name(bad: Any) -> None:
    expected = r"autoreset_mode=.* is not an autoreset mode; expected .*'NextStep', 'SameStep', 'Disabled'"
    with pytest.raises(ValueError, match=expected):
        CountingVectorEnv(2, autoreset_mode=bad)
    env = CountingVectorEnv(2)
    with pytest.raises(ValueError, match=expected):
        env.autoreset_mode = bad
    assert env.autoreset_mode is NEXT and env.metadata["autoreset_mode"] is NEXT


@pytest.mark.parametrize(
    ("reset_mask", "error", "message"),
    [
        ([True, False, False], TypeError, "got list"),
        (np.array([1, 0, 0]), TypeError, "got dtype int64"),
        (mask(T, F), ValueError, r"got shape \(2,\)"),
        (mask(F, F, F), ValueError, "got no True value"),
    ],
    ids=["list", "int-dtype", "wrong-shape", "no-true"],
)
def test_bad_reset_mask_is_refused_by_name(reset_mask: Any, error: type, message: str) -> None:
    env = CountingVectorEnv(3)
    env.reset(seed=0)
    with pytest.raises(error, match=rf"options\['reset_mask'\] must be a numpy bool array of shape \(3,\).*{message}"):
        env.reset(options={"reset_mask": reset_mask})


def test_reset_mask_needs_a_running_env_and_no_other_option() -> None:
    env = CountingVectorEnv(3)
    with pytest.raises(gym.error.ResetNeeded, match="call reset\\(\\) without a mask first"):
        env.reset(options={"reset_mask": mask(T, F, F)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"reset options \['colour'\] are not supported"):
        env.reset(options={"reset_mask": mask(T, F, F), "colour": "red"})


def test_switching_to_same_step_with_a_slot_waiting_to_restart_is_refused() -> None:
    env = CountingVectorEnv(3)
    env.reset(seed=0)
    env.step(ZERO)
    env.step(ZERO)  # slot 0 ended; NEXT_STEP would restart it on the next step
    env.autoreset_mode = "SameStep"
    assert env.metadata["autoreset_mode"] is SAME
    with pytest.raises(gym.error.ResetNeeded, match=r"slot\(s\) 0 ended"):
        env.step(ZERO)
    env.autoreset_mode = NEXT  # back: the slot restarts as NEXT_STEP promised
    observations, rewards, *_ = env.step(ZERO)
    np.testing.assert_array_equal(observations[0], [2, 0])
    assert rewards[0] == 0.0


def test_sb3_adapter_steps_in_same_step_and_leaves_the_env_mode_alone() -> None:
    from nlp_agents.sb3 import CoreVecEnv

    runs = []
    for mode in AutoresetMode:
        env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=3, vectorization_mode="vector_entry_point")
        env.unwrapped.autoreset_mode = mode
        adapter = CoreVecEnv(env)
        adapter.seed(5)
        steps = [adapter.reset()]
        rng = np.random.default_rng(0)
        for _ in range(12):
            observations, rewards, dones, infos = adapter.step(rng.integers(0, 12, size=3))
            terminal = [info.get("terminal_observation") for info in infos]
            steps.append((observations, rewards, dones, terminal))
            assert env.autoreset_mode is mode and env.metadata["autoreset_mode"] is mode
        runs.append(steps)
    assert any(any(step[2]) for step in runs[0][1:])
    for run in runs[1:]:
        for got, want in zip(run, runs[0], strict=True):
            np.testing.assert_equal(got, want)


def assert_infos_agree(native: dict[str, Any], sync: dict[str, Any], where: str, shared: set[str]) -> None:
    """Every info the native env gives, SyncVectorEnv gives too, with the same mask and values under it.

    ``shared``: names that are both a per-step info and a task metric (Recommendation's ``engagement``).
    The single env's info holds the metric there on the step that ends an episode and the step's
    value otherwise; the native env holds only the metric, masked to the ending slots. Both agree
    where the native mask is True.
    """
    for key, value in native.items():
        if key.startswith("_"):
            continue
        assert key in sync, f"{where}: SyncVectorEnv has no info {key!r}"
        present = native[f"_{key}"]
        if key == "text":  # the single env writes its text at every step, the vector env where episodes end or start
            assert sync["_text"][present].all(), where
            assert list(value[present]) == list(sync["text"][present]), where
            continue
        if key in shared:
            assert sync[f"_{key}"][present].all(), f"{where}[_{key}]"
        else:
            np.testing.assert_array_equal(present, sync[f"_{key}"], err_msg=f"{where}[_{key}]")
        if isinstance(value, dict):
            assert_infos_agree(value, sync[key], f"{where}[{key!r}]", shared)
        elif value.dtype == object:  # final_obs: one array per ended slot; a one-slot env's titles
            for got, want in zip(value[present], sync[key][present], strict=True):
                if np.issubdtype(np.asarray(got).dtype, np.number):
                    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=f"{where}[{key!r}]")
                else:
                    np.testing.assert_array_equal(got, want, err_msg=f"{where}[{key!r}]")
        elif np.issubdtype(value.dtype, np.floating):
            np.testing.assert_allclose(
                value[present], sync[key][present], rtol=1e-6, atol=1e-9, err_msg=f"{where}[{key!r}]"
            )
        else:
            np.testing.assert_array_equal(value[present], sync[key][present], err_msg=f"{where}[{key!r}]")


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_native_vector_env_equals_sync_vector_env(env_id: str, mode: AutoresetMode, rng: np.random.Generator) -> None:
    """Seed for seed, both vectorisations give the same trajectories and infos in every autoreset mode."""
    check_native_equals_sync(env_id, mode, 4, rng)


ONE_SLOT_ENVS = {"NextWordEasy-v0", "SentimentBandit-v0", "DialogueEasy-v0", "Ranking-v0", "Recommendation-v0"}


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize(
    "env_id", [env_id for env_id in ENV_IDS if env_id.split("/")[1] in ONE_SLOT_ENVS], ids=lambda env_id: env_id
)
def test_a_one_slot_vector_env_equals_sync_vector_env(
    env_id: str, mode: AutoresetMode, rng: np.random.Generator
) -> None:
    """One slot steps through the single env's bookkeeping (Python integers): the same trajectories still."""
    check_native_equals_sync(env_id, mode, 1, rng)


def check_native_equals_sync(env_id: str, mode: AutoresetMode, num_envs: int, rng: np.random.Generator) -> None:
    native = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode, info_text=True
    )
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode})
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    native_obs, native_infos = native.reset(seed=3)
    sync_obs, sync_infos = sync.reset(seed=3)
    np.testing.assert_array_equal(native_obs, sync_obs)
    shared = set(native.unwrapped.metric_names) & set(native_infos)
    assert_infos_agree(native_infos, sync_infos, "reset", shared)
    steps = 2 * gym.spec(env_id).max_episode_steps
    ends = 0
    for step in range(steps):
        actions = rng.integers(native.single_action_space.n, size=num_envs)
        native_step, sync_step = native.step(actions), sync.step(actions)
        for native_part, sync_part in zip(native_step[:4], sync_step[:4], strict=True):
            np.testing.assert_allclose(native_part, sync_part, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")
        assert_infos_agree(native_step[4], sync_step[4], f"step {step}", shared)
        done = ended(native_step[2], native_step[3])
        ends += int(done.sum())
        if mode is SAME and done.any():
            assert {"final_obs", "final_info"} <= set(native_step[4])
        if mode is DISABLED and done.any():  # restart the ended slots, the first time with fresh seeds
            seed = 100 if ends == done.sum() else None
            native_obs, native_infos = native.reset(seed=seed, options={"reset_mask": done.copy()})
            sync_obs, sync_infos = sync.reset(seed=seed, options={"reset_mask": done.copy()})
            np.testing.assert_allclose(native_obs, sync_obs, rtol=1e-6, atol=1e-9)
            assert_infos_agree(native_infos, sync_infos, f"reset_mask at step {step}", shared)
    assert ends > 0, "no episode ended: the run is too short to test autoreset"


@pytest.mark.parametrize("env_id", ["nlp_envs/NextWordEasy-v0", "nlp_envs/Recommendation-v0"])
def test_same_step_restarts_few_slots_alone_and_many_together_as_sync_does(
    env_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SAME_STEP observes a few restarted slots alone and many with the whole batch, both as SyncVectorEnv does.

    The test above runs 4 slots, where every restart counts as many (``observe_slots`` is never used).
    """
    num_envs = 16
    native = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode=SAME, info_text=True
    )
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": SAME})
    core = native.unwrapped.core
    alone: list[int] = []
    observe_slots = core.observe_slots
    monkeypatch.setattr(core, "observe_slots", lambda slots: alone.append(len(slots)) or observe_slots(slots))
    native_obs, native_infos = native.reset(seed=5)
    sync_obs, sync_infos = sync.reset(seed=5)
    np.testing.assert_array_equal(native_obs, sync_obs)
    shared = set(native.unwrapped.metric_names) & set(native_infos)
    rng = np.random.default_rng(1)
    restarts = []
    for step in range(3 * gym.spec(env_id).max_episode_steps):
        actions = rng.integers(native.single_action_space.n, size=num_envs)
        native_step, sync_step = native.step(actions), sync.step(actions)
        for native_part, sync_part in zip(native_step[:4], sync_step[:4], strict=True):
            np.testing.assert_allclose(native_part, sync_part, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")
        assert_infos_agree(native_step[4], sync_step[4], f"step {step}", shared)
        restarts.append(int(ended(native_step[2], native_step[3]).sum()))
    few = [count for count in restarts if 0 < count <= num_envs // 8]
    assert alone == few and few, "no step restarted a few slots alone"
    if env_id == "nlp_envs/NextWordEasy-v0":
        assert max(restarts) > num_envs // 8, "no step restarted many slots"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_masked_tasks_report_the_action_mask_in_infos(env_id: str, rng: np.random.Generator) -> None:
    """Every task that masks acts puts ``action_mask`` in its infos, so SAME_STEP's final_info has the ended state's."""
    env = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    _, infos = env.reset(seed=0)
    core = env.unwrapped.core
    if core.action_masks() is None:
        assert "action_mask" not in infos
        return
    for _ in range(10):
        np.testing.assert_array_equal(infos["action_mask"], env.unwrapped.action_masks())
        _, _, _, _, infos = env.step(rng.integers(env.single_action_space.n, size=4))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_writing_into_returned_arrays_leaves_the_env_alone(env_id: str, rng: np.random.Generator) -> None:
    """Observations and infos that reset and step return belong to the caller: TorchRL writes into them."""
    written, untouched = (
        gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", autoreset_mode=SAME) for _ in range(2)
    )
    observations, infos = written.reset(seed=0)
    untouched.reset(seed=0)
    for _ in range(gym.spec(env_id).max_episode_steps):
        observations[...] = 0
        for values in infos.values():
            if isinstance(values, np.ndarray) and values.dtype != object:
                values[...] = 0
        np.testing.assert_array_equal(written.unwrapped.action_masks(), untouched.unwrapped.action_masks())
        actions = rng.integers(written.single_action_space.n, size=4)
        observations, *rest, infos = written.step(actions)
        expected, *expected_rest, _ = untouched.step(actions)
        np.testing.assert_array_equal(observations, expected)
        for got, want in zip(rest, expected_rest, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("env_id", ["nlp_envs/SentimentBandit-v0", "nlp_envs/NextWordEasy-v0"])
def test_final_observations_are_the_callers_own(env_id: str, rng: np.random.Generator) -> None:
    """``final_obs`` rows share no memory with the returned batch and keep their values over later steps.

    SentimentBandit ends every slot at every step (the final observations are views of a batch that
    is observed anew); NextWordEasy ends some slots at a time.
    """
    env = gym.make_vec(env_id, num_envs=16, vectorization_mode="vector_entry_point", autoreset_mode=SAME)
    observations, _ = env.reset(seed=0)
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(3 * gym.spec(env_id).max_episode_steps):
        observations, _, _, _, infos = env.step(rng.integers(env.single_action_space.n, size=16))
        for row in infos.get("final_obs", np.empty(0, dtype=object))[infos.get("_final_obs", [])]:
            assert not np.shares_memory(row, observations)
            kept.append((row, row.copy()))
        observations[...] = -1.0
    assert kept, "no episode ended: the run is too short"
    for row, value in kept:
        np.testing.assert_array_equal(row, value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_episode_steps": True}, r"max_episode_steps must be an integer >= 1, got True"),  # was a limit of 1
        ({"max_episode_steps": 1.5}, r"max_episode_steps must be an integer >= 1, got 1.5"),  # ended after 2 steps
        ({"max_episode_steps": "2"}, r"max_episode_steps must be an integer >= 1, got '2'"),  # a bare TypeError
        ({"max_episode_steps": 0}, r"max_episode_steps must be an integer >= 1, got 0"),
        ({"info_text": "no"}, r"info_text must be True or False, got 'no'"),  # was taken as True
        ({"info_text": 1}, r"info_text must be True or False, got 1"),
    ],
)
def test_vector_env_arguments_are_checked_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CountingVectorEnv(2, **kwargs)
    with pytest.raises(ValueError, match=message):
        gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)


def test_vector_env_takes_numpy_integers_and_bools() -> None:
    env = CountingVectorEnv(3, max_episode_steps=np.int64(2), info_text=np.bool_(False))
    env.reset(seed=0)
    env.step(np.zeros(3, dtype=np.int64))
    _, _, terminated, truncated, _ = env.step(np.zeros(3, dtype=np.int64))
    # Slot 0 terminates at step 2; the limit of 2 truncates every slot then (as Gymnasium's TimeLimit does).
    assert terminated.tolist() == [True, False, False] and truncated.tolist() == [True, True, True]
    assert env.info_text is False
