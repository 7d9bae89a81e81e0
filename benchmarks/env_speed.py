"""Env steps per second of every registered env, measured side by side in one run.

For each id: (a) the single env from ``gym.make``, (b) Gymnasium's ``SyncVectorEnv`` of 64 copies,
(c) our native vector env with 64 slots, and with 1024 slots in each autoreset mode: NEXT_STEP
(the default), SAME_STEP and DISABLED (where the ended slots are restarted with
``reset(options={"reset_mask": ...})`` after each step, as a DISABLED user does). The three modes
are measured in turns, ``--repeats`` times, and the best of each is printed, so that a busy machine
slows all of them alike. Actions are uniformly random and drawn before timing. A first row gives
Gymnasium's ``CartPole-v1`` as the reference (its native vector env has NEXT_STEP only). Prints a
table, the single env's speed as a fraction of CartPole's single env (the two measured in turns,
``--repeats`` times: the median of the turns' ratios), the ratio (c, 1024 next-step) / (b) and the ratio same-step /
next-step, in env steps and in transitions (steps that apply an action: NEXT_STEP's autoreset
steps are not).

Speeds are steps per second of one core: by default (``--clock cpu``) the time is this process's
CPU time, so that other processes on a busy machine do not count (every env here runs on one
core); ``--clock wall`` times with the wall clock instead.

    python benchmarks/env_speed.py [--seconds 1.0] [--repeats 3] [--clock cpu] [--envs SUBSTRING ...] [--single]

``--single`` measures the single env and CartPole's alone (a quick check while tuning a task).

Targets on the 2-core development machine: native x1024 >= 1,000,000 steps/s and >= 20x
SyncVectorEnv x64; single env >= 25% of CartPole-v1's single env (issue 14); same-step x1024 at
least 0.9x next-step.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import nlp_envs

ACTION_BATCHES = 64
REFERENCE = "CartPole-v1"
MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def timed_steps(
    step: Callable[[np.ndarray], object], actions: np.ndarray, batch: int, seconds: float
) -> tuple[int, float]:
    """Call ``step`` on pre-drawn actions until ``seconds`` pass on :data:`clock`; return the env steps and the time."""
    calls, start = 0, clock()
    while True:
        for row in actions:
            step(row)
        calls += len(actions)
        elapsed = clock() - start
        if elapsed >= seconds:
            return calls * batch, elapsed


def single_env_meter(env_id: str, rng: np.random.Generator) -> Callable[[float], float]:
    """A function that steps ``gym.make(env_id)`` for the given seconds and returns its steps per second."""
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = rng.integers(env.action_space.n, size=(4096, 1))

    def step(action: np.ndarray) -> None:
        _, _, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            env.reset()

    def measure(seconds: float) -> float:
        steps, elapsed = timed_steps(step, actions, 1, seconds)
        return steps / elapsed

    return measure


def measure_singles(env_id: str, seconds: float, repeats: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Best steps per second of the single env of ``env_id`` and of CartPole-v1's, and their ratio.

    Measured in turns, right next to each other; the ratio is the median over the turns of the two
    speeds' ratio within a turn, so that it holds on a machine whose speed changes from second to
    second (the ratio of the two bests can pair a fast moment of one with a slow one of the other).
    """
    ours, reference = single_env_meter(env_id, rng), single_env_meter(REFERENCE, rng)
    pairs = [(ours(seconds), reference(seconds)) for _ in range(repeats)]
    ratio = float(np.median([mine / theirs for mine, theirs in pairs]))
    return max(mine for mine, _ in pairs), max(theirs for _, theirs in pairs), ratio


def measure_vector(env: gym.vector.VectorEnv, seconds: float, rng: np.random.Generator) -> tuple[float, float]:
    """Steps and transitions per second of ``env``.

    A transition is a slot's step that applies its action: NEXT_STEP's autoreset steps (the step
    after an episode ends) are steps but not transitions. With DISABLED autoreset the loop restarts
    the ended slots itself, with ``reset(options={"reset_mask": ...})``.
    """
    env.reset(seed=0)
    actions = rng.integers(env.single_action_space.n, size=(ACTION_BATCHES, env.num_envs))
    mode = env.metadata.get("autoreset_mode")
    pending = np.zeros(env.num_envs, dtype=bool)
    autoreset_steps = 0

    def step(row: np.ndarray) -> None:
        nonlocal pending, autoreset_steps
        _, _, terminated, truncated, _ = env.step(row)
        ended = terminated | truncated
        if mode == AutoresetMode.NEXT_STEP:
            autoreset_steps += int(pending.sum())
            pending = ended
        elif mode == AutoresetMode.DISABLED and ended.any():
            env.reset(options={"reset_mask": ended})

    steps, elapsed = timed_steps(step, actions, env.num_envs, seconds)
    env.close()
    return steps / elapsed, (steps - autoreset_steps) / elapsed


def measure_modes(env_id: str, seconds: float, repeats: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Best steps and transitions per second of the native x1024 env in each of :data:`MODES`, measured in turns."""
    envs = {
        mode: gym.make_vec(env_id, num_envs=1024, vectorization_mode="vector_entry_point", autoreset_mode=mode)
        for mode in MODES
    }
    best = dict.fromkeys(MODES, (0.0, 0.0))
    for _ in range(repeats):
        for mode, env in envs.items():
            best[mode] = max(best[mode], measure_vector(env, seconds, rng))
    return [best[mode] for mode in MODES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument(
        "--repeats", type=int, default=3, help="turns over the three autoreset modes, and over single env and CartPole"
    )
    parser.add_argument("--envs", nargs="*", default=[], help="only ids containing one of these substrings")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="cpu: this process's CPU time (default); wall: real time"
    )
    parser.add_argument("--single", action="store_true", help="only the single env and its fraction of CartPole's")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    env_ids = [env_id for env_id in nlp_envs.env_ids() if not args.envs or any(part in env_id for part in args.envs)]
    rng = np.random.default_rng(0)
    print(f"env steps per second of one core ({args.clock} clock)")
    if args.single:
        print(f"{'env id':36s} {'single':>14s} {'CartPole':>14s} {'of CartPole':>14s}")
        for env_id in env_ids:
            single, cartpole, of_cartpole = measure_singles(env_id, args.seconds, args.repeats, rng)
            print(f"{env_id:36s} {single:14,.0f} {cartpole:14,.0f} {of_cartpole:13.0%}")
        return
    columns = ("single", "of CartPole", "sync x64", "native x64", "next x1024", "same x1024", "disabled x1024")
    ratios = ("x1024/sync", "same/next", "per transition")
    header = f"{'env id':36s} " + " ".join(f"{column:>14s}" for column in (*columns, *ratios))
    print(header)
    print("-" * len(header))
    for env_id in [REFERENCE, *env_ids]:
        single, _, of_cartpole = measure_singles(env_id, args.seconds, args.repeats, rng)
        sync, _ = measure_vector(gym.make_vec(env_id, num_envs=64, vectorization_mode="sync"), args.seconds, rng)
        native, _ = measure_vector(
            gym.make_vec(env_id, num_envs=64, vectorization_mode="vector_entry_point"), args.seconds, rng
        )
        if env_id == REFERENCE:  # Gymnasium's CartPole vector env speaks NEXT_STEP only
            next_step, _ = measure_vector(
                gym.make_vec(env_id, num_envs=1024, vectorization_mode="vector_entry_point"), args.seconds, rng
            )
            modes = [f"{next_step:14,.0f}", f"{'-':>14s}", f"{'-':>14s}"]
            same_over_next = [f"{'-':>14s}", f"{'-':>14s}"]
        else:
            (next_step, next_transitions), (same_step, same_transitions), (disabled, _) = measure_modes(
                env_id, args.seconds, args.repeats, rng
            )
            modes = [f"{value:14,.0f}" for value in (next_step, same_step, disabled)]
            same_over_next = [f"{same_step / next_step:13.2f}x", f"{same_transitions / next_transitions:13.2f}x"]
        figures = [f"{single:14,.0f}", f"{of_cartpole:13.0%} ", f"{sync:14,.0f}", f"{native:14,.0f}"]
        print(f"{env_id:36s} " + " ".join([*figures, *modes, f"{next_step / sync:13.1f}x", *same_over_next]))


if __name__ == "__main__":
    main()
