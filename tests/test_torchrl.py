"""TorchRL over the envs: ``GymWrapper`` of the native vector env in SAME_STEP and DISABLED modes,
``GymEnv`` of the single env, and action masks through TorchRL's ``ActionMask`` transform.

TorchRL refuses NEXT_STEP vector envs; these tests check that the two modes it takes give it the
env's true trajectories (observations before each step, final observations at episode ends,
rewards), that its collector runs, and that its masked random actions obey the env's masks.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from tests.conftest import ENV_IDS

pytest.importorskip("torchrl", reason="torchrl is not installed; pip install -e '.[dev]' installs it (pinned)")
import torch
from tensordict import TensorDict  # comes with torchrl
from torchrl.collectors import Collector  # torchrl >= 0.13 names SyncDataCollector Collector
from torchrl.data import Binary, Composite
from torchrl.envs import ActionMask, GymEnv, GymWrapper, TransformedEnv
from torchrl.envs.gym_like import default_info_dict_reader

NUM_ENVS = 4
MODES = [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]
MASKED = "nlp_envs/DialogueEasy-v0"


def recorded_vector_env(env_id: str, mode: AutoresetMode) -> tuple[gym.vector.VectorEnv, list[dict[str, Any]]]:
    """A native vector env whose steps are recorded: the state before, the actions, what the step returned."""
    env = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point", autoreset_mode=mode)
    steps: list[dict[str, Any]] = []
    step = env.step

    def recording_step(actions: Any) -> Any:
        unwrapped = env.unwrapped
        before = {"obs": unwrapped.core.observe(), "masks": unwrapped.action_masks().copy()}
        result = step(actions)
        steps.append({**before, "actions": np.asarray(actions).copy(), "result": result})
        return result

    env.step = recording_step  # type: ignore[method-assign]
    return env, steps


def final_observations(result: tuple) -> np.ndarray:
    """What the step's next observations are: the final ones where an episode ended (SAME_STEP), else the returned."""
    observations, _, terminated, truncated, infos = result
    ended = np.logical_or(terminated, truncated)
    if "final_obs" not in infos:
        return observations
    finals = observations.copy()
    for slot in np.flatnonzero(ended):
        finals[slot] = infos["final_obs"][slot]
    return finals


def check_rollout_matches_env(rollout: TensorDict, steps: list[dict[str, Any]]) -> None:
    assert len(steps) == rollout.shape[1]
    np.testing.assert_array_equal(rollout["action"].numpy(), np.stack([step["actions"] for step in steps], 1))
    np.testing.assert_allclose(rollout["observation"].numpy(), np.stack([step["obs"] for step in steps], 1))
    finals = np.stack([final_observations(step["result"]) for step in steps], 1)
    np.testing.assert_allclose(rollout["next", "observation"].numpy(), finals)
    rewards = np.stack([step["result"][1] for step in steps], 1)
    np.testing.assert_allclose(rollout["next", "reward"].squeeze(-1).numpy(), rewards, rtol=1e-6)
    dones = np.stack([np.logical_or(step["result"][2], step["result"][3]) for step in steps], 1)
    np.testing.assert_array_equal(rollout["next", "done"].squeeze(-1).numpy(), dones)
    assert dones.any(), "no episode ended: the rollout is too short to test autoreset"


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gym_wrapper_rolls_out_the_true_trajectories_and_collects(env_id: str, mode: AutoresetMode) -> None:
    venv, steps = recorded_vector_env(env_id, mode)
    env = GymWrapper(venv, categorical_action_encoding=True)
    assert env.batch_size == torch.Size([NUM_ENVS])
    env.set_seed(0)
    steps.clear()
    length = min(2 * gym.spec(env_id).max_episode_steps, 40)
    check_rollout_matches_env(env.rollout(length, break_when_any_done=False), steps)
    collector = Collector(env, None, frames_per_batch=NUM_ENVS * 8, total_frames=NUM_ENVS * 16)
    try:
        batches = list(collector)
    finally:
        collector.shutdown()
    assert [batch.numel() for batch in batches] == [NUM_ENVS * 8, NUM_ENVS * 8]
    assert all(bool(torch.isfinite(batch["next", "reward"]).all()) for batch in batches)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gym_env_of_the_registered_id_rolls_out_an_episode(env_id: str) -> None:
    env = GymEnv(env_id)
    env.set_seed(0)
    rollout = env.rollout(gym.spec(env_id).max_episode_steps)  # stops when the episode ends
    assert bool(rollout["next", "done"][-1])
    assert not bool(rollout["next", "done"][:-1].any())


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
def test_action_masks_reach_torchrl_action_mask_transform(mode: AutoresetMode) -> None:
    venv, steps = recorded_vector_env(MASKED, mode)
    n = int(venv.single_action_space.n)
    env = GymWrapper(venv, categorical_action_encoding=True)
    if mode is AutoresetMode.DISABLED:  # no final-observation reader here: read the mask from the infos
        spec = Composite(action_mask=Binary(n=n, shape=(NUM_ENVS, n), dtype=torch.bool), shape=[NUM_ENVS])
        env.set_info_dict_reader(default_info_dict_reader(["action_mask"], spec=spec))
    env = TransformedEnv(env, ActionMask())
    env.set_seed(0)
    steps.clear()
    rollout = env.rollout(60, break_when_any_done=False)
    masks = np.stack([step["masks"] for step in steps], 1)
    np.testing.assert_array_equal(rollout["action_mask"].numpy(), masks)
    assert not masks.all(), "the masks allowed every act: nothing was tested"
    actions = np.stack([step["actions"] for step in steps], 1)
    assert np.take_along_axis(masks, actions[..., None], axis=-1).all(), "an action outside the env's mask was taken"
    assert rollout["next", "done"].any()


def test_action_masks_of_the_single_env_reach_torchrl_action_mask_transform() -> None:
    env = GymEnv(MASKED, categorical_action_encoding=True)
    single = env._env  # the gymnasium env GymEnv made
    n = int(single.action_space.n)
    taken: list[tuple[np.ndarray, int]] = []
    step = single.step

    def recording_step(action: Any) -> Any:
        taken.append((single.unwrapped.action_masks().copy(), int(action)))
        return step(action)

    single.step = recording_step  # type: ignore[method-assign]
    spec = Composite(action_mask=Binary(n=n, shape=(n,), dtype=torch.bool))
    env.set_info_dict_reader(default_info_dict_reader(["action_mask"], spec=spec))
    env = TransformedEnv(env, ActionMask())
    env.set_seed(0)
    rollout = env.rollout(200, break_when_any_done=False)
    assert len(taken) == 200 and rollout["next", "done"].any()
    assert not all(mask.all() for mask, _ in taken), "the masks allowed every act: nothing was tested"
    assert all(mask[action] for mask, action in taken), "an action outside the env's mask was taken"
