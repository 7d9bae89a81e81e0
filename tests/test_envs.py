"""Contract tests that every registered env id must pass (Gymnasium, SB3, seeding, autoreset).

The native vector env against SyncVectorEnv, in each autoreset mode, is in test_autoreset.py.
"""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nlp_envs
from nlp_envs import InvalidActionError
from tests.conftest import ENV_IDS, make_vec


def run_episode(env: gym.Env, seed: int, actions: np.ndarray) -> tuple[list, list]:
    observation, _ = env.reset(seed=seed)
    observations, rewards = [observation], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(int(action))
        observations.append(observation)
        rewards.append(reward)
        if terminated or truncated:
            break
    return observations, rewards


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_env_checker(env_id: str) -> None:
    gym_check_env(gym.make(env_id, render_mode="ansi").unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_env_checker(env_id: str) -> None:
    sb3_check_env(gym.make(env_id).unwrapped, warn=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registration_has_limits_and_vector_entry_point(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.max_episode_steps is not None and spec.max_episode_steps > 0
    assert spec.reward_threshold is not None
    assert spec.vector_entry_point is not None


def test_make_with_module_prefix_in_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('nlp_envs:nlp_envs/NextWordEasy-v0')\n"
        "observation, info = env.reset(seed=0)\n"
        "print(env.observation_space.contains(observation))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_episode_different_seed_different(env_id: str, rng: np.random.Generator) -> None:
    env = gym.make(env_id)
    actions = rng.integers(env.action_space.n, size=env.spec.max_episode_steps)
    first = run_episode(env, 7, actions)
    again = run_episode(env, 7, actions)
    np.testing.assert_array_equal(np.array(first[0]), np.array(again[0]))
    np.testing.assert_array_equal(first[1], again[1])
    starts = {tuple(np.ravel(env.reset(seed=seed)[0])) for seed in range(20)}
    assert len(starts) > 1, "twenty seeds all gave the same first observation"


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize(
    "bad_action",
    [-1, 10**9, 1.0, "a", np.array([0, 1]), True],
    ids=["negative", "too-large", "float", "string", "wrong-shape", "bool"],
)
def test_invalid_action_raises_named_error_and_env_stays_usable(env_id: str, bad_action: object) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=env_id.split("/")[1].split("-")[0]) as raised:
        env.step(bad_action)
    assert "Discrete(" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    env.step(0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_invalid_actions_raise(env_id: str) -> None:
    env = make_vec(env_id, 3)
    env.reset(seed=0)
    n = env.single_action_space.n
    for bad in (np.array([0, 1, n]), np.array([0, 1]), np.zeros(3, dtype=np.float32), np.zeros((3, 1), dtype=np.int64)):
        with pytest.raises(InvalidActionError):
            env.step(bad)
    env.step(np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_next_step_autoreset_truth_table(env_id: str, rng: np.random.Generator) -> None:
    """After a slot ends, its next step returns the next episode's start with reward 0 and no end."""
    env = make_vec(env_id, 2)
    single = gym.make(env_id)
    env.reset(seed=11)
    single.reset(seed=11)
    for _ in range(gym.spec(env_id).max_episode_steps + 1):
        actions = rng.integers(env.single_action_space.n, size=2)
        observations, rewards, terminated, truncated, _ = env.step(actions)
        _, single_reward, single_terminated, single_truncated, _ = single.step(int(actions[0]))
        assert rewards[0] == pytest.approx(single_reward)
        if terminated[0] or truncated[0]:
            break
    else:
        pytest.fail("slot 0 never ended within max_episode_steps")
    assert (terminated[0], truncated[0]) == (single_terminated, single_truncated)
    next_observations, rewards, terminated, truncated, _ = env.step(rng.integers(env.single_action_space.n, size=2))
    expected_start, _ = single.reset()
    np.testing.assert_array_equal(next_observations[0], expected_start)
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episode_end_infos_carry_metrics_with_masks(env_id: str) -> None:
    env = make_vec(env_id, 8, info_text=True)
    env.reset(seed=0)
    policy = nlp_envs.reference_policy(env_id, "random")
    env.action_space.seed(0)
    observations = None
    for _ in range(gym.spec(env_id).max_episode_steps):
        observations, _, terminated, truncated, infos = env.step(policy(observations, env))
        ended = terminated | truncated
        if ended.any():
            for name in env.unwrapped.metric_names:
                np.testing.assert_array_equal(infos[f"_{name}"], ended)
            assert all(isinstance(text, str) for text in infos["text"][ended])
            return
    pytest.fail("no episode ended within max_episode_steps")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_ansi_returns_episode_text(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    text = env.render()
    assert isinstance(text, str) and text
    vector = make_vec(env_id, 2, render_mode="ansi")
    vector.reset(seed=0)
    assert all(isinstance(text, str) for text in vector.render())


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_afterstate_is_in_afterstate_space(env_id: str, rng: np.random.Generator) -> None:
    env = make_vec(env_id, 4)
    observations, _ = env.reset(seed=0)
    actions = rng.integers(env.single_action_space.n, size=4)
    afterstates = env.unwrapped.afterstate(observations, actions)
    space = env.unwrapped.core.afterstate_space
    assert all(space.contains(np.asarray(row, dtype=space.dtype)) for row in afterstates)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reference_policies_have_random_and_oracle_and_oracle_wins(env_id: str) -> None:
    assert {"random", "oracle"} <= set(nlp_envs.reference_policies(env_id))
    oracle = nlp_envs.evaluate(env_id, "oracle", episodes=50, seed=0)
    random = nlp_envs.evaluate(env_id, "random", episodes=50, seed=0)
    assert oracle.mean_return > random.mean_return
    assert oracle.normalized_score == pytest.approx(1.0)
    assert random.normalized_score == pytest.approx(0.0)
    assert len(oracle.returns) == 50


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_reference_acts_like_the_random_agent_among_allowed_acts(env_id: str) -> None:
    env = make_vec(env_id, 8)
    observations, _ = env.reset(seed=0)
    env.action_space.seed(0)
    policy = nlp_envs.reference_policy(env_id, "random")
    for _ in range(30):
        allowed = env.unwrapped.action_masks()
        allowed |= ~allowed.any(axis=1, keepdims=True)
        actions = policy(observations, env)
        assert allowed[np.arange(8), actions].all()
        observations, *_ = env.step(actions)
    if env.unwrapped.core.action_masks() is None:  # unmasked tasks: the plain seeded draws
        env.action_space.seed(1)
        actions = policy(observations, env)
        env.action_space.seed(1)
        np.testing.assert_array_equal(actions, env.action_space.sample())


def test_unknown_reference_policy_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="random"):
        nlp_envs.reference_policy("nlp_envs/NextWordEasy-v0", "genius")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_env_info_carries_the_text_so_far_every_step(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    _, info = env.reset(seed=0)
    assert isinstance(info["text"], str) and info["text"]
    for action in range(2):
        _, _, terminated, truncated, info = env.step(action)
        assert info["text"] == env.render()
        if terminated or truncated:
            break
