"""Env steps per second that each RL library reaches on one env, plugged in its own way, side by side.

Rows, all on ``--env`` (default ``nlp_envs/Dialogue-v0``, whose single env is the slowest) with
``--n-envs`` copies (default 16), uniformly random actions drawn before timing where the library
lets us, on one torch thread:

- SB3 VecEnv: ``VecEnv.step`` of ``nlp_envs.sb3.make_vec_env`` (the native core) against SB3's
  ``DummyVecEnv`` over ``gym.make`` (what SB3's own ``make_vec_env`` builds);
- SB3 PPO: ``PPO("MlpPolicy", vec_env, n_steps=128, batch_size=256, n_epochs=4).learn(...)`` over
  the same two vec envs (collection and updates: what a user sees);
- TorchRL: ``GymWrapper(gym.make_vec(..., vectorization_mode="vector_entry_point",
  autoreset_mode=SAME_STEP)).rollout(...)`` against ``GymEnv(env_id).rollout(...)``, the single env
  (TorchRL over Gymnasium's ``SyncVectorEnv`` of these envs fails on their text infos);
- CleanRL: ``examples/cleanrl_dqn.py`` (one env, as CleanRL's DQN runs), its own final ``SPS``;
  on NextWordEasy-v0 with the flags of tests/test_examples.py, DQN updates included.

Each measurement runs ``--repeats`` times in turns with the others and the best is printed, so
that a busy machine slows all of them alike.

    python benchmarks/library_speed.py [--env nlp_envs/Dialogue-v0] [--n-envs 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import nlp_envs
from nlp_envs.sb3 import make_vec_env

ROOT = Path(__file__).resolve().parents[1]
CLEANRL_FLAGS = [
    "--total-timesteps", "4000", "--learning-starts", "500", "--learning-rate", "1e-3",
    "--target-network-frequency", "100", "--exploration-fraction", "0.3", "--train-frequency", "2",
    "--batch-size", "64", "--eval-episodes", "10",
]  # fmt: skip


def dummy_vec_env(env_id: str, n_envs: int) -> DummyVecEnv:
    vec_env = DummyVecEnv([lambda: gym.make(env_id) for _ in range(n_envs)])
    vec_env.seed(0)
    return vec_env


def vec_env_steps(vec_env: VecEnv, steps: int) -> float:
    """Env steps per second of ``vec_env.step`` (``steps`` calls, each stepping every copy)."""
    rng = np.random.default_rng(0)
    actions = rng.integers(vec_env.action_space.n, size=(steps, vec_env.num_envs))
    vec_env.reset()
    start = time.perf_counter()
    for row in actions:
        vec_env.step(row)
    return steps * vec_env.num_envs / (time.perf_counter() - start)


def ppo_steps(vec_env: VecEnv, steps: int) -> float:
    """Env steps per second of PPO's ``learn(steps)`` (model built before timing)."""
    model = PPO("MlpPolicy", vec_env, n_steps=128, batch_size=256, n_epochs=4, seed=0, device="cpu")
    start = time.perf_counter()
    model.learn(steps)
    return model.num_timesteps / (time.perf_counter() - start)


def torchrl_steps(env_id: str, n_envs: int, steps: int, native: bool) -> float:
    """Env steps per second of a TorchRL rollout: the native vector env, or ``GymEnv`` of the single env."""
    from torchrl.envs import GymEnv, GymWrapper

    if native:
        vector = gym.make_vec(
            env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", autoreset_mode=AutoresetMode.SAME_STEP
        )
        env = GymWrapper(vector, categorical_action_encoding=True)
        length = max(steps // n_envs, 1)
    else:
        env = GymEnv(env_id, categorical_action_encoding=True)
        length = steps
    env.set_seed(0)
    env.rollout(2, break_when_any_done=False)  # warm-up: TorchRL builds its step functions on first use
    start = time.perf_counter()
    rollout = env.rollout(length, break_when_any_done=False)
    return rollout.numel() / (time.perf_counter() - start)


def cleanrl_steps() -> float:
    """The final ``SPS`` that ``examples/cleanrl_dqn.py`` prints (its loop, DQN updates included)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cleanrl_dqn.py"), *CLEANRL_FLAGS],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
        cwd=os.environ.get("TMPDIR", "/tmp"),
        check=True,
    )
    return float(re.findall(r"^SPS: (\d+)$", result.stdout, flags=re.MULTILINE)[-1])


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="nlp_envs/Dialogue-v0", choices=nlp_envs.env_ids(), metavar="ENV_ID")
    parser.add_argument("--n-envs", type=int, default=16, help="copies (slots) of the env")
    parser.add_argument("--steps", type=int, default=4096, help="env steps per measurement (all copies together)")
    parser.add_argument("--repeats", type=int, default=2, help="measure each row this many times; print the best")
    args = parser.parse_args()
    if args.n_envs < 1 or args.steps < args.n_envs or args.repeats < 1:
        parser.error("--n-envs and --repeats must be >= 1 and --steps >= --n-envs")
    torch.set_num_threads(1)
    env_id, n, steps = args.env, args.n_envs, args.steps
    rows: dict[str, Callable[[], float]] = {
        f"SB3 VecEnv.step, nlp_envs.sb3.make_vec_env x{n}": lambda: vec_env_steps(
            make_vec_env(env_id, n, 0), steps // n
        ),
        f"SB3 VecEnv.step, DummyVecEnv(gym.make) x{n}": lambda: vec_env_steps(dummy_vec_env(env_id, n), steps // n),
        f"SB3 PPO learn, nlp_envs.sb3.make_vec_env x{n}": lambda: ppo_steps(make_vec_env(env_id, n, 0), steps),
        f"SB3 PPO learn, DummyVecEnv(gym.make) x{n}": lambda: ppo_steps(dummy_vec_env(env_id, n), steps),
        f"TorchRL rollout, GymWrapper(native, SAME_STEP) x{n}": lambda: torchrl_steps(env_id, n, steps, native=True),
        "TorchRL rollout, GymEnv(env_id) x1": lambda: torchrl_steps(env_id, n, steps // 4, native=False),
        "CleanRL examples/cleanrl_dqn.py x1 (NextWordEasy-v0, DQN)": cleanrl_steps,
    }
    best = dict.fromkeys(rows, 0.0)
    for _ in range(args.repeats):
        for name, measure in rows.items():
            best[name] = max(best[name], measure())
    print(f"env {env_id}, {steps} env steps per measurement, best of {args.repeats}, torch threads 1")
    print(
        f"versions: stable-baselines3 {version('stable-baselines3')}, torchrl {version('torchrl')}, "
        f"gymnasium {version('gymnasium')}, torch {version('torch')}"
    )
    width = max(map(len, rows))
    for name, value in best.items():
        print(f"{name:<{width}}  {value:>12,.0f} steps/s")
    pairs = [("SB3 VecEnv.step", 0, 1), ("SB3 PPO learn", 2, 3), ("TorchRL rollout", 4, 5)]
    values = list(best.values())
    for label, ours, theirs in pairs:
        print(f"{label}: native / {list(rows)[theirs].split(', ', 1)[1]} = {values[ours] / values[theirs]:.1f}x")


if __name__ == "__main__":
    main()
