"""What the framework costs alone: a task that does nothing, through ``gym.make`` beside CartPole-v1, and batched.

Every task's single env is a :class:`~nlp_envs.core.CoreEnv` over a one-slot :class:`~nlp_envs.core.TaskCore`;
this times a core whose methods do nothing (an 8-value observation, 4 actions, one metric, episodes of
``--episode-steps`` steps) in turns with CartPole-v1's single env, both through ``gym.make`` and stepped
by the same loop (reset when an episode ends). It prints microseconds per step of each (best of the
turns) and the median of the turns' ratios: the ceiling any task's single env can reach against CartPole
(issue 14: a task must stay above 25%).

The same core behind the native vector env (``--num-envs`` slots) is timed in NEXT_STEP and SAME_STEP
autoreset in turns, per transition (a step that applies an action; NEXT_STEP's autoreset steps are not):
the ceiling of any task's same-step / next-step ratio (issue 16). Beside it, what Gymnasium's
``info["final_obs"]`` format costs alone: an object array of one observation array per ended slot
(here views of the batch, the cheapest array objects), made and released, per slot.

    python benchmarks/framework_floor.py [--episode-steps 1 4] [--steps 20000] [--repeats 7] [--num-envs 1024]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from nlp_envs.core import CoreEnv, CoreVectorEnv, TaskCore

ENV_ID = "nlp_envs_benchmark/DoNothing-v0"


class DoNothingCore(TaskCore):
    """A task whose every method does as little as the contract allows; episodes of ``episode_steps`` steps."""

    env_id = ENV_ID
    metric_names = ("success",)
    end_info_names = ()
    max_steps = 1_000
    single_observation_space = spaces.Box(0.0, 1.0, (8,), np.float32)
    single_action_space = spaces.Discrete(4)

    def __init__(self, num_envs: int, episode_steps: int = 1) -> None:
        super().__init__(num_envs)
        self.episode_steps = episode_steps
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.observation = np.zeros((num_envs, 8), dtype=np.float32)

    def begin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        self.t[slots] = 0

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.t = self.t + 1
        return np.zeros(self.num_envs), self.t >= self.episode_steps

    def observe(self) -> np.ndarray:
        return self.observation.copy()

    def metrics(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        return {"success": np.zeros(len(slots))}

    def text(self, slot: int) -> str:
        return ""

    def afterstate(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return observations


class DoNothingEnv(CoreEnv):
    """The single env of :class:`DoNothingCore`."""

    core_class = DoNothingCore


class DoNothingVectorEnv(CoreVectorEnv):
    """The native vector env of :class:`DoNothingCore`."""

    core_class = DoNothingCore


def step_timer(env: Any, steps: int) -> Callable[[], float]:
    """A function that steps ``env`` with random actions and returns CPU microseconds per step."""
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps).tolist()
    env.reset(seed=0)

    def timed() -> float:
        started = time.process_time()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return (time.process_time() - started) / steps * 1e6

    return timed


def transition_timer(env: DoNothingVectorEnv, steps: int) -> Callable[[], float]:
    """A function that steps ``env`` and returns CPU nanoseconds per transition (NEXT_STEP's autoresets are not)."""
    actions = np.zeros(env.num_envs, dtype=np.int64)
    next_step = env.autoreset_mode is AutoresetMode.NEXT_STEP
    env.reset(seed=0)

    def timed() -> float:
        transitions, ended = 0, np.zeros(env.num_envs, dtype=bool)
        started = time.process_time()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(actions)
            transitions += env.num_envs - int(np.count_nonzero(ended)) if next_step else env.num_envs
            ended = terminated | truncated
        return (time.process_time() - started) / transitions * 1e9

    return timed


def final_obs_timer(num_envs: int, steps: int) -> Callable[[], float]:
    """CPU nanoseconds per slot to make and release ``final_obs`` as an object array of row views."""
    observations = np.zeros((num_envs, 8), dtype=np.float32)

    def timed() -> float:
        started = time.process_time()
        for _ in range(steps):
            np.fromiter(observations, dtype=object, count=num_envs)
        return (time.process_time() - started) / (steps * num_envs) * 1e9

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episode-steps", type=int, nargs="+", default=[1, 4], help="steps per episode")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per turn")
    parser.add_argument("--repeats", type=int, default=7, help="turns of the do-nothing env and CartPole")
    parser.add_argument("--num-envs", type=int, default=1024, help="slots of the native vector env")
    args = parser.parse_args()
    gym.register(ENV_ID, entry_point=DoNothingEnv)
    print("microseconds per step of one core (cpu clock); ratio: CartPole's time over the do-nothing env's")
    for episode_steps in args.episode_steps:
        ours = step_timer(gym.make(ENV_ID, episode_steps=episode_steps), args.steps)
        cartpole = step_timer(gym.make("CartPole-v1"), args.steps)
        turns = [(ours(), cartpole()) for _ in range(args.repeats)]
        ratio = float(np.median([theirs / mine for mine, theirs in turns]))
        best_ours, best_cartpole = min(mine for mine, _ in turns), min(theirs for _, theirs in turns)
        print(
            f"{episode_steps}-step episodes: do-nothing {best_ours:6.2f} us, CartPole-v1 {best_cartpole:6.2f} us, "
            f"ratio {ratio:.2f}"
        )
    vector_steps = max(1, args.steps // 100)
    print(
        f"\nnanoseconds per transition of the native vector env x{args.num_envs}; "
        "ratio: next-step's time over same-step's"
    )
    for episode_steps in args.episode_steps:
        next_step, same_step = (
            transition_timer(
                DoNothingVectorEnv(args.num_envs, autoreset_mode=mode, episode_steps=episode_steps), vector_steps
            )
            for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
        )
        turns = [(next_step(), same_step()) for _ in range(args.repeats)]
        ratio = float(np.median([nexts / sames for nexts, sames in turns]))
        print(
            f"{episode_steps}-step episodes: next-step {min(n for n, _ in turns):6.1f} ns, "
            f"same-step {min(s for _, s in turns):6.1f} ns, ratio {ratio:.2f}"
        )
    views = final_obs_timer(args.num_envs, vector_steps)
    best_views = min(views() for _ in range(args.repeats))
    print(f"final_obs alone (one array per ended slot, made and released): {best_views:.1f} ns a slot")


if __name__ == "__main__":
    main()
