"""Env steps per second of every registered env, measured side by side in one run.

For each id: (a) the single env from ``gym.make``, (b) Gymnasium's ``SyncVectorEnv`` of 64 copies,
(c) our native vector env with 64 and 1024 slots. Actions are uniformly random and drawn before
timing. Prints a table and the ratio (c, 1024) / (b).

    python benchmarks/env_speed.py [--seconds 1.0] [--envs SUBSTRING ...]

Targets on the 2-core development machine: native x1024 >= 1,000,000 steps/s and >= 20x
SyncVectorEnv x64; single env >= 50,000 steps/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import nlp_envs

ACTION_BATCHES = 64


def steps_per_second(step: Callable[[np.ndarray], object], actions: np.ndarray, batch: int, seconds: float) -> float:
    """Call ``step`` on pre-drawn actions until ``seconds`` pass; return env steps per second."""
    calls, start = 0, time.perf_counter()
    while True:
        for row in actions:
            step(row)
        calls += len(actions)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * batch / elapsed


def measure_single(env_id: str, seconds: float, rng: np.random.Generator) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = rng.integers(env.action_space.n, size=(4096, 1))

    def step(action: np.ndarray) -> None:
        _, _, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            env.reset()

    return steps_per_second(step, actions, 1, seconds)


def measure_vector(env: gym.vector.VectorEnv, seconds: float, rng: np.random.Generator) -> float:
    env.reset(seed=0)
    actions = rng.integers(env.single_action_space.n, size=(ACTION_BATCHES, env.num_envs))
    rate = steps_per_second(env.step, actions, env.num_envs, seconds)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--envs", nargs="*", default=[], help="only ids containing one of these substrings")
    args = parser.parse_args()
    env_ids = [env_id for env_id in nlp_envs.env_ids() if not args.envs or any(part in env_id for part in args.envs)]
    rng = np.random.default_rng(0)
    columns = ("single", "sync x64", "native x64", "native x1024", "x1024/sync")
    header = f"{'env id':36s} " + " ".join(f"{column:>13s}" for column in columns)
    print(header)
    print("-" * len(header))
    for env_id in env_ids:
        single = measure_single(env_id, args.seconds, rng)
        sync = measure_vector(gym.make_vec(env_id, num_envs=64, vectorization_mode="sync"), args.seconds, rng)
        native = [
            measure_vector(gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point"), args.seconds, rng)
            for n in (64, 1024)
        ]
        figures = [f"{value:13,.0f}" for value in (single, sync, *native)]
        print(f"{env_id:36s} " + " ".join(figures) + f" {native[1] / sync:12.1f}x")


if __name__ == "__main__":
    main()
