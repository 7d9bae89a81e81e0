"""The SB3 adapter refuses bad hyper-parameters with one line naming them, before SB3 sees them.

Each row was a defect: SB3's own error without the parameter's name, a MemoryError, an
OverflowError, or a setting accepted with only a warning.
"""

from __future__ import annotations

import math
import re

import gymnasium as gym
import pytest

import nlp_agents
from nlp_agents.base import HyperparameterError

EASY = "nlp_envs/NextWordEasy-v0"

BAD = [
    ("sb3-ppo", {"policy_kwargs": 3}, r"policy_kwargs=3 has type int; expected dict\[str, Any\] \| None"),
    ("sb3-a2c", {"rollout_buffer_kwargs": [1]}, r"rollout_buffer_kwargs=\[1\] has type list"),
    ("sb3-dqn", {"replay_buffer_kwargs": "x"}, r"replay_buffer_kwargs='x' has type str"),
    ("sb3-dqn", {"replay_buffer_kwargs": {"n_envs": 3}}, r"replay_buffer_kwargs has no key 'n_envs'.*handle_timeout"),
    ("sb3-ppo", {"rollout_buffer_kwargs": {"a": 1}}, r"rollout_buffer_kwargs has no key 'a'.*accepted keys: \(none\)"),
    ("sb3-ppo", {"policy_kwargs": {"net_arch": [64, 0]}}, r"policy_kwargs\.net_arch must be >= 1 .*item 0"),
    ("sb3-ppo", {"policy_kwargs": {"net_arch": {"pi": [8], "vf": [-2]}}}, r"policy_kwargs\.net_arch must be >= 1"),
    ("sb3-dqn", {"policy_kwargs": {"net_arch": [True]}}, r"policy_kwargs\.net_arch=\[True\] has type list"),
    ("sb3-a2c", {"policy_kwargs": {"ortho_init": 1}}, r"policy_kwargs\.ortho_init=1 has type int; expected bool"),
    ("sb3-ppo", {"rollout_buffer_class": 3}, r"rollout_buffer_class=3 has type int; expected type\[.*RolloutBuffer\]"),
    ("sb3-dqn", {"replay_buffer_class": "ReplayBuffer"}, r"replay_buffer_class='ReplayBuffer' has type str"),
    ("sb3-a2c", {"learning_rate": -1}, r"learning_rate must be > 0, got -1"),
    ("sb3-a2c", {"learning_rate": math.nan}, r"learning_rate=nan is not finite"),
    ("sb3-ppo", {"learning_rate": "0.1"}, r"learning_rate='0.1' has type str; expected float\."),
    ("sb3-ppo", {"clip_range_vf": "x"}, r"clip_range_vf='x' has type str; expected float \| None"),
    ("sb3-ppo", {"policy": ""}, r"policy='' is not a policy of PPO; expected one of 'MlpPolicy'"),
    ("sb3-ppo", {"n_steps": 10**15}, r"n_steps must be >= 1 and <= 2147483647"),
    ("sb3-dqn", {"buffer_size": 10**15}, r"buffer_size must be >= 1 and <= 2147483647"),
    ("sb3-a2c", {"torch_threads": 10**15}, r"torch_threads must be in \[0, \d+\]"),
    ("sb3-a2c", {"stats_window_size": 2**64}, r"stats_window_size must be >= 1"),
    ("sb3-a2c", {"use_sde": True}, r"use_sde=True is generalized State-Dependent Exploration.*leave use_sde=False"),
    ("sb3-dqn", {"target_update_interval": 0}, r"target_update_interval must be >= 1"),
    ("sb3-dqn", {"target_update_interval": -1}, r"target_update_interval must be >= 1"),
    ("sb3-dqn", {"train_freq": [4, 5]}, r"train_freq=\[4, 5\] has type list; expected int \| tuple\[int, str\]"),
    ("sb3-dqn", {"gamma": True}, r"gamma=True has type bool; expected float"),
]


@pytest.mark.parametrize(("name", "hyperparams", "pattern"), BAD, ids=[f"{n}-{next(iter(h))}" for n, h, _ in BAD])
def test_a_bad_sb3_hyperparameter_is_one_line_naming_it(name: str, hyperparams: dict, pattern: str) -> None:
    # The check needs no env, so that a suite can run it before any cell.
    with pytest.raises(HyperparameterError, match=pattern) as caught:
        nlp_agents.entry(name).factory.resolve().check_hyperparams(hyperparams)
    text = str(caught.value)
    assert text.startswith(f"{name}: ") and "\n" not in text
    assert re.search(re.escape(next(iter(hyperparams))), text)


@pytest.fixture(scope="module")
def env():
    vector = gym.make_vec(EASY, num_envs=2, vectorization_mode="vector_entry_point")
    yield vector
    vector.close()


@pytest.mark.parametrize(
    ("name", "hyperparams", "pattern"), BAD[:6], ids=[f"{n}-{next(iter(h))}" for n, h, _ in BAD[:6]]
)
def test_the_agent_refuses_them_too(name: str, hyperparams: dict, pattern: str, env) -> None:
    with pytest.raises(HyperparameterError, match=pattern):
        nlp_agents.make(name, env, device="cpu", **hyperparams)


def test_a_seed_sb3_cannot_take_is_named(env) -> None:
    with pytest.raises(HyperparameterError, match=r"sb3-ppo: seed must be at most 4294967295 \(2\*\*32 - 1\), got 10"):
        nlp_agents.make("sb3-ppo", env, seed=10**15, device="cpu")


def test_a_huge_int_device_is_named(env) -> None:
    with pytest.raises(HyperparameterError, match=r"sb3-dqn: device=18446744073709551616 is not a device"):
        nlp_agents.make("sb3-dqn", env, device=2**64)


def test_good_tables_are_accepted_and_reach_sb3(env) -> None:
    agent = nlp_agents.make(
        "sb3-ppo",
        env,
        device="cpu",
        n_steps=8,
        batch_size=16,
        policy_kwargs={"net_arch": {"pi": [8], "vf": [4]}, "ortho_init": False},
    )
    assert [
        layer.out_features for layer in agent.model.policy.mlp_extractor.policy_net if hasattr(layer, "out_features")
    ] == [8]
    dqn = nlp_agents.make(
        "sb3-dqn",
        env,
        device="cpu",
        train_freq=[1, "episode"],
        replay_buffer_kwargs={"handle_timeout_termination": False},
    )
    assert dqn.model.replay_buffer.handle_timeout_termination is False
    assert dqn.model.train_freq.frequency == 1


def test_sb3_refusals_name_the_given_hyperparameters(env) -> None:
    # An error only SB3 finds (here: two settings it cannot combine) names what the user gave.
    with pytest.raises(HyperparameterError, match=r"refused these hyper-parameters \(optimize_memory_usage=True, "):
        nlp_agents.make(
            "sb3-dqn",
            env,
            device="cpu",
            optimize_memory_usage=True,
            replay_buffer_kwargs={"handle_timeout_termination": True},
        )
