"""The loop the built-in agents share: epsilon-greedy draws, episode-boundary bookkeeping, built-in registration."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import nlp_agents
from nlp_agents import builtin, plugins
from nlp_agents.base import BaseAgent, Step, epsilon_greedy, resolve_device, unit
from nlp_envs import plugins as env_plugins

ROOT = Path(__file__).resolve().parents[1]
EASY = "nlp_envs/NextWordEasy-v0"


def make_vec(env_id: str = EASY, num_envs: int = 4) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.0])
def test_epsilon_greedy_draws_the_same_numbers_whatever_the_greedy_acts(epsilon: float) -> None:
    masks = np.ones((6, 5), dtype=bool)
    masks[:, 0] = False
    results, followers = [], []
    for greedy in (np.zeros(6, dtype=np.int64), np.full(6, 4)):
        rng = np.random.default_rng(7)
        results.append(epsilon_greedy(rng, epsilon, lambda greedy=greedy: greedy, 5, 6, masks))
        followers.append(rng.random())
    assert followers[0] == followers[1]  # the stream after the call does not depend on the weights
    explored = results[0] == results[1]  # rows that explored took the same random act in both
    if epsilon == 0.0:
        assert not explored.any() and (results[1] == 4).all()
    if epsilon == 1.0:
        assert explored.all() and masks[np.arange(6), results[0]].all()


def test_epsilon_greedy_skips_the_greedy_acts_when_every_row_explores() -> None:
    def greedy() -> np.ndarray:
        raise AssertionError("greedy() was called although every row explored")

    actions = epsilon_greedy(np.random.default_rng(0), 1.0, greedy, 3, 8, None)
    assert actions.shape == (8,) and ((actions >= 0) & (actions < 3)).all()


@dataclass
class RecorderConfig:
    """Exploration only."""

    epsilon_start: float = unit(1.0)
    """Exploration at the start."""
    epsilon_end: float = unit(1.0)
    """Exploration at the end."""
    exploration_fraction: float = unit(0.5)
    """Decay fraction."""
    bootstrap_truncated: bool = False
    """Bootstrap at truncations."""


class Recorder(BaseAgent):
    """Keeps every Step the shared loop hands it; acts like the random agent."""

    name = "recorder"
    Config = RecorderConfig

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.steps: list[Step] = []
        self.calls: list[str] = []

    def greedy(self, observations: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        return np.zeros(len(observations), dtype=np.int64)

    def begin(self) -> None:
        self.calls.append("begin")

    def end(self) -> None:
        self.calls.append("end")

    def observe(self, step: Step) -> None:
        self.steps.append(step)


@pytest.mark.parametrize("bootstrap_truncated", [False, True])
def test_the_loop_marks_reset_steps_and_stops_and_continues_episodes(bootstrap_truncated: bool) -> None:
    env, twin = make_vec(), make_vec()
    agent = Recorder(env, seed=5, bootstrap_truncated=bootstrap_truncated)
    agent.learn(40)
    agent.learn(40)  # continues the same episodes: no second reset
    assert agent.calls == ["begin", "end", "begin", "end"] and agent.num_timesteps == 80
    # Replay the actions on a twin env: the loop's record must be the env's own stream.
    observations, _ = twin.reset(seed=5)
    ended = np.zeros(4, dtype=bool)
    saw_reset = saw_truncation = False
    for step in agent.steps:
        np.testing.assert_array_equal(step.observations, observations)
        observations, rewards, terminated, truncated, _ = twin.step(step.actions)
        np.testing.assert_array_equal(step.next_observations, observations)
        np.testing.assert_array_equal(step.rewards, rewards)
        np.testing.assert_array_equal(step.valid, ~ended)
        ended = terminated | truncated
        np.testing.assert_array_equal(step.ended, ended)
        np.testing.assert_array_equal(step.stops, terminated if bootstrap_truncated else ended)
        saw_reset |= bool((~step.valid).any())
        saw_truncation |= bool((truncated & ~terminated).any())
    assert saw_reset and saw_truncation  # the run covers what the test claims


def test_a_callback_returning_false_stops_the_loop_and_end_still_runs() -> None:
    agent = Recorder(make_vec(), seed=0)
    agent.learn(1000, callback=lambda _agent, done: done < 12)
    assert agent.num_timesteps == 12 and agent.calls == ["begin", "end"]


def test_there_is_one_resolve_device() -> None:
    found = []
    for folder in ("agents", "nlp_envs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and node.name == "resolve_device":
                    found.append(str(path.relative_to(ROOT)))
    assert found == ["agents/nlp_agents/base.py"]
    assert str(resolve_device("auto", "test")) in ("cpu", "cuda")  # what the leaderboard records


def test_a_builtin_agent_is_its_file_plus_one_entry_point(tmp_path, monkeypatch) -> None:
    """A new built-in: agents/<name>.py holding the class with that name, and the entry point line."""
    import nlp_agents as package

    (tmp_path / "echo_builtin.py").write_text(
        textwrap.dedent(
            """
            from nlp_agents.random import RandomAgent

            class EchoAgent(RandomAgent):
                name = "echo_builtin"
            """
        )
    )
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    info = tmp_path / "echo_builtin_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-builtin-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nlp_envs]\necho_builtin = nlp_agents.builtin:echo_builtin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    env_plugins.reset()
    try:
        assert "echo_builtin" in nlp_agents.available(), plugins.registry().failures()
        agent = nlp_agents.make("echo_builtin", make_vec(), seed=1)
        assert type(agent).__name__ == "EchoAgent" and agent.learn(8).num_timesteps == 8
        monkeypatch.setenv(plugins.BLOCK_VARIABLE, "echo_builtin")  # blocked by its entry-point name
        assert "echo_builtin" not in nlp_agents.available()
    finally:
        plugins.reset()
        env_plugins.reset()


def test_builtin_lookups_that_fail_say_what_is_missing() -> None:
    with pytest.raises(AttributeError, match="no nlp_agents/not_an_agent.py"):
        builtin.not_an_agent  # noqa: B018
    factory = builtin.NamedAgentFactory("nlp_agents.qtable", "dqn")
    with pytest.raises(LookupError, match="nlp_agents.qtable defines no agent class with name = 'dqn'"):
        factory.resolve()
    assert builtin.NamedAgentFactory("nlp_agents.dqn", "dqn").resolve().__name__ == "DQNAgent"
