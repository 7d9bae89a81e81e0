"""Our DQN against Stable-Baselines3's DQN, side by side in one run, plus the agents' scores.

Parts (``--parts``, default ``a,b,c``):

a. Same env (CartPole-v1), same total steps, number of gradient updates, batch size, network
   (64x64 MLP), learning rate, target-update period and gradient clip: env steps per second of
   each, their ratio, and where the time goes (microseconds per gradient step of each update).
b. Wall-clock time to reach a normalised score of 0.9 on ``nlp_envs/NextWordEasy-v0``, each side
   with the best of a few settings (evaluation time is not counted).
c. The normalised score every built-in agent reaches on each env's easy preset with the default
   budget (``--budget`` steps, 16 envs, seed 0; 300 evaluation episodes from seed 10**6).
g. (for a GPU, not in the default parts) throughput of ``dqn`` and ``vlearner`` with large vector
   envs (``--sizes``): env steps and gradient steps per second, and the score reached.

Usage: ``python benchmarks/agent_speed.py [--device cpu|cuda] [--parts a,b,c] [--steps 20000]``.
Torch runs on one CPU thread on both sides (DESIGN.md: small nets are fastest that way).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import nlp_agents
import nlp_envs

EASY = "nlp_envs/NextWordEasy-v0"
EASY_PRESETS = (
    "nlp_envs/NextWordEasy-v0",
    "nlp_envs/DialogueEasy-v0",
    "nlp_envs/TextClassificationBandit-v0",
    "nlp_envs/SentimentBandit-v0",
    "nlp_envs/Recommendation-v0",
)
BUILTIN_AGENTS = ("random", "qtable", "dqn", "vlearner", "sb3-a2c", "sb3-ppo", "sb3-dqn")


def make_vec(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")


def part_a(steps: int, num_envs: int, device: str, repeats: int) -> dict[str, Any]:
    """Same env, steps, updates, batch and network: steps per second of each DQN.

    The two sides alternate ``repeats`` times and the medians are reported, so that load from
    other processes hits both alike.
    """
    runs = [_part_a_once(steps, num_envs, device) for _ in range(repeats)]
    result = dict(runs[0])
    for key in (
        "ours_steps_per_s",
        "sb3_steps_per_s",
        "ratio",
        "ours_us_per_gradient_step",
        "sb3_us_per_gradient_step",
    ):
        result[key] = float(np.median([run[key] for run in runs]))
    result["ratios"] = [run["ratio"] for run in runs]
    return result


def _part_a_once(steps: int, num_envs: int, device: str) -> dict[str, Any]:
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    learning_starts, batch, updates_per_env_step = 1000, 32, 0.25  # SB3 defaults: train_freq=4, gradient_steps=1
    gradient_steps = int(num_envs * updates_per_env_step)
    assert gradient_steps >= 1, "--num-envs must be a multiple of 4"
    env = make_vec("CartPole-v1", num_envs)
    ours = nlp_agents.make(
        "dqn",
        env,
        seed=0,
        device=device,
        learning_rate=1e-4,
        batch_size=batch,
        learning_starts=learning_starts,
        train_frequency=1,
        gradient_steps=gradient_steps,
        target_update_interval=250,
        hidden_sizes=[64, 64],
        n_step=1,
        max_grad_norm=10.0,
        exploration_fraction=0.1,
        buffer_size=100_000,
        bootstrap_truncated=True,
    )
    start = time.perf_counter()
    ours.learn(steps)
    ours_seconds = time.perf_counter() - start

    sb3_env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    sb3 = DQN(
        "MlpPolicy",
        sb3_env,
        learning_rate=1e-4,
        batch_size=batch,
        learning_starts=learning_starts,
        train_freq=4,
        gradient_steps=1,
        target_update_interval=1000,
        policy_kwargs={"net_arch": [64, 64]},
        max_grad_norm=10.0,
        exploration_fraction=0.1,
        buffer_size=100_000,
        seed=0,
        device=device,
    )
    start = time.perf_counter()
    sb3.learn(steps)
    sb3_seconds = time.perf_counter() - start

    # Where the time goes: one gradient step of each, in isolation (same batch size, warm caches).
    from nlp_agents.dqn import update

    def time_ours(repeats: int = 300) -> float:
        replay = ours.replay
        for _ in range(20):
            update(ours.q, ours.q_target, ours.optimizer, replay.sample(batch, 1, 0.99, ours.generator), True, 10.0)
        _sync(device)
        begin = time.perf_counter()
        for _ in range(repeats):
            update(ours.q, ours.q_target, ours.optimizer, replay.sample(batch, 1, 0.99, ours.generator), True, 10.0)
        _sync(device)
        return (time.perf_counter() - begin) / repeats * 1e6

    def time_sb3(repeats: int = 300) -> float:
        sb3.train(gradient_steps=20, batch_size=batch)
        _sync(device)
        begin = time.perf_counter()
        sb3.train(gradient_steps=repeats, batch_size=batch)
        _sync(device)
        return (time.perf_counter() - begin) / repeats * 1e6

    ours_update_us, sb3_update_us = time_ours(), time_sb3()
    return {
        "env": "CartPole-v1",
        "steps": steps,
        "gradient_updates_each": int(round((steps - learning_starts) * updates_per_env_step)),
        "batch_size": batch,
        "network": "64x64 MLP",
        "ours_num_envs": num_envs,
        "ours_steps_per_s": steps / ours_seconds,
        "ours_gradient_steps": ours.gradient_steps_done,
        "sb3_steps_per_s": steps / sb3_seconds,
        "sb3_gradient_steps": int(sb3._n_updates),
        "ratio": sb3_seconds / ours_seconds,
        "ours_us_per_gradient_step": ours_update_us,
        "sb3_us_per_gradient_step": sb3_update_us,
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class TimeToScore:
    """A ``callback(agent, steps)`` that evaluates every ``every`` steps, off the clock, and stops at ``target``."""

    def __init__(self, every: int, target: float, time_budget: float) -> None:
        self.every, self.target, self.time_budget = every, target, time_budget
        self.next_check, self.training_seconds, self.score = every, 0.0, float("nan")
        self.reached_at: tuple[int, float] | None = None
        self.clock = time.perf_counter()

    def __call__(self, agent: Any, steps: int) -> bool:
        if steps < self.next_check:
            return True
        self.training_seconds += time.perf_counter() - self.clock
        self.next_check = steps + self.every
        self.score = nlp_envs.evaluate(EASY, agent, episodes=200, seed=10**6).normalized_score
        if self.score >= self.target:
            self.reached_at = (steps, self.training_seconds)
        self.clock = time.perf_counter()
        return self.reached_at is None and self.training_seconds < self.time_budget


def time_to_score(
    name: str,
    num_envs: int,
    settings: dict[str, Any],
    device: str,
    max_steps: int,
    time_budget: float,
    every: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Train one agent until its greedy policy scores 0.9 (checked every ``every`` steps, off the clock)."""
    env = make_vec(EASY, num_envs)
    agent = nlp_agents.make(name, env, seed=seed, device=device, **settings)
    watcher = TimeToScore(every, 0.9, time_budget)
    watcher.clock = time.perf_counter()
    agent.learn(max_steps, callback=watcher)
    reached = watcher.reached_at
    return {
        "agent": name,
        "seed": seed,
        "steps": reached[0] if reached else None,
        "seconds": reached[1] if reached else None,
        "last_score": watcher.score,
    }


OURS_SETTINGS: list[tuple[int, dict[str, Any]]] = [
    (16, {}),
    (8, {"learning_rate": 3e-3, "batch_size": 256, "learning_starts": 1000, "target_update_interval": 60}),
    (16, {"learning_rate": 3e-3, "batch_size": 128, "learning_starts": 500, "target_update_interval": 60}),
    (16, {"learning_rate": 5e-3, "batch_size": 64, "learning_starts": 500, "target_update_interval": 60}),
    (
        16,
        {
            "learning_rate": 3e-3,
            "batch_size": 128,
            "learning_starts": 300,
            "target_update_interval": 60,
            "hidden_sizes": [64],
        },
    ),
    (64, {"batch_size": 512, "learning_starts": 2000, "learning_rate": 3e-3}),
    (128, {"batch_size": 1024, "learning_starts": 4000, "learning_rate": 3e-3, "target_update_interval": 100}),
]
SB3_FAST = {
    "learning_rate": 3e-3,
    "exploration_fraction": 0.2,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 500,
}
SB3_SETTINGS: list[tuple[int, dict[str, Any]]] = [
    (
        1,
        {
            "learning_rate": 1e-3,
            "exploration_fraction": 0.3,
            "target_update_interval": 1000,
            "train_freq": 4,
            "batch_size": 64,
            "learning_starts": 1000,
        },
    ),
    (
        8,
        {
            "learning_rate": 1e-3,
            "exploration_fraction": 0.3,
            "target_update_interval": 1000,
            "train_freq": 1,
            "gradient_steps": 2,
            "batch_size": 64,
            "learning_starts": 1000,
        },
    ),
    (8, {**SB3_FAST, "batch_size": 256, "learning_starts": 1000}),
    (8, {**SB3_FAST, "batch_size": 128, "learning_starts": 500}),
    (8, {**SB3_FAST, "batch_size": 128, "learning_starts": 300, "policy_kwargs": {"net_arch": [64]}}),
    (8, {**SB3_FAST, "learning_rate": 5e-3, "batch_size": 64, "learning_starts": 500}),
]


def part_b(device: str, time_budget: float, seeds: int) -> dict[str, Any]:
    """Wall-clock time to 0.9 normalised score on NextWordEasy, each side's best of a few settings.

    Each setting runs with ``seeds`` seeds; its time is the median over seeds (a seed that never
    reaches 0.9 counts as the whole budget), so that neither a lucky seed nor timer noise decides.
    Our ``dqn`` runs on our native vector env; SB3's DQN on the same env through the SB3 adapter
    (``sb3-dqn``), SB3's fastest way to run it.
    """
    runs: dict[str, list[dict[str, Any]]] = {"dqn": [], "sb3-dqn": []}
    for name, candidates in (("dqn", OURS_SETTINGS), ("sb3-dqn", SB3_SETTINGS)):
        for num_envs, settings in candidates:
            per_seed = [
                time_to_score(name, num_envs, settings, device, 400_000, time_budget, 500, seed)
                for seed in range(seeds)
            ]
            times = [time_budget if r["seconds"] is None else r["seconds"] for r in per_seed]
            reached = sum(r["seconds"] is not None for r in per_seed)
            result = {
                "agent": name,
                "num_envs": num_envs,
                "settings": settings,
                "seconds": float(np.median(times)) if 2 * reached > seeds else None,
                "seconds_per_seed": times,
                "steps_per_seed": [r["steps"] for r in per_seed],
            }
            print(json.dumps(result), flush=True)
            runs[name].append(result)
    best = {
        name: min((r for r in results if r["seconds"] is not None), key=lambda r: r["seconds"], default=None)
        for name, results in runs.items()
    }
    ratio: Any = None
    if best["dqn"] is not None and best["sb3-dqn"] is not None:
        ratio = best["sb3-dqn"]["seconds"] / best["dqn"]["seconds"]
    elif best["dqn"] is not None:
        ratio = f"> {time_budget / best['dqn']['seconds']:.1f} (sb3-dqn did not reach 0.9 within {time_budget:.0f} s)"
    return {"runs": runs, "best": best, "ratio": ratio}


def part_c(device: str, budget: int) -> list[dict[str, Any]]:
    """Normalised score of every built-in agent on each env's easy preset, default settings and budget."""
    rows = []
    for env_id in [env_id for env_id in EASY_PRESETS if env_id in nlp_envs.env_ids()]:
        for name in BUILTIN_AGENTS:
            env = make_vec(env_id, 16)
            try:
                agent = nlp_agents.make(name, env, seed=0, device=device)
            except nlp_agents.UnsupportedEnvError as error:
                rows.append({"env": env_id, "agent": name, "score": None, "note": str(error).split(";")[0]})
                continue
            start = time.perf_counter()
            agent.learn(budget)
            seconds = time.perf_counter() - start
            result = nlp_envs.evaluate(env_id, agent, episodes=300, seed=10**6)
            rows.append(
                {
                    "env": env_id,
                    "agent": name,
                    "score": result.normalized_score,
                    "mean_return": result.mean_return,
                    "train_seconds": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def part_g(device: str, sizes: list[int], vector_steps: int) -> list[dict[str, Any]]:
    """Throughput with large vector envs (for a GPU): env and gradient steps per second, and the score."""
    rows = []
    for env_id in (EASY, "nlp_envs/NextWord-v0"):
        for name in ("dqn", "vlearner"):
            for num_envs in sizes:
                if name == "vlearner" and env_id != EASY and num_envs > 1024:
                    continue  # 2,000 afterstates per observation: memory grows with envs x vocabulary
                env = make_vec(env_id, num_envs)
                settings: dict[str, Any] = (
                    {
                        "batch_size": 4096,
                        "learning_starts": 4 * num_envs,
                        "buffer_size": 200 * num_envs,
                        "learning_rate": 3e-3,
                        "torch_threads": 0,
                    }
                    if name == "dqn"
                    else {"minibatch_size": 4096, "rollout_steps": 8, "learning_rate": 3e-3, "torch_threads": 0}
                )
                agent = nlp_agents.make(name, env, seed=0, device=device, **settings)
                agent.learn(num_envs * 5)  # warm-up: allocations, kernels
                _sync(device)
                start = time.perf_counter()
                updates_before = getattr(agent, "gradient_steps_done", 0)
                agent.learn(num_envs * vector_steps)
                _sync(device)
                seconds = time.perf_counter() - start
                score = nlp_envs.evaluate(env_id, agent, episodes=300, seed=10**6).normalized_score
                rows.append(
                    {
                        "env": env_id,
                        "agent": name,
                        "num_envs": num_envs,
                        "device": device,
                        "env_steps_per_s": num_envs * vector_steps / seconds,
                        "gradient_steps_per_s": (getattr(agent, "gradient_steps_done", 0) - updates_before) / seconds,
                        "score_after": score,
                        "steps": agent.num_timesteps,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parts", default="a,b,c")
    parser.add_argument("--steps", type=int, default=20_000, help="part a: env steps of each side")
    parser.add_argument("--num-envs", type=int, default=8, help="part a: our vector env size (multiple of 4)")
    parser.add_argument("--repeats", type=int, default=3, help="part a: alternating runs of each side")
    parser.add_argument("--time-budget", type=float, default=60.0, help="part b: seconds per run at most")
    parser.add_argument("--seeds", type=int, default=3, help="part b: seeds per setting")
    parser.add_argument("--budget", type=int, default=50_000, help="part c: env steps per agent and env")
    parser.add_argument("--sizes", default="1024,4096,16384", help="part g: vector env sizes")
    parser.add_argument("--vector-steps", type=int, default=200, help="part g: vector steps per measurement")
    parser.add_argument("--json", default=None, help="also write all results to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    if "a" in parts:
        results["a"] = part_a(args.steps, args.num_envs, args.device, args.repeats)
        a = results["a"]
        print(
            f"(a) CartPole-v1, {a['steps']:,} steps, ~{a['gradient_updates_each']:,} updates of batch "
            f"{a['batch_size']}, {a['network']}: ours {a['ours_steps_per_s']:,.0f} steps/s "
            f"({a['ours_num_envs']} envs), SB3 {a['sb3_steps_per_s']:,.0f} steps/s: ratio {a['ratio']:.2f}x; "
            f"one gradient step: ours {a['ours_us_per_gradient_step']:.0f} us, "
            f"SB3 {a['sb3_us_per_gradient_step']:.0f} us (medians of {args.repeats} alternating runs; "
            f"ratios {', '.join(f'{r:.2f}' for r in a['ratios'])})",
            flush=True,
        )
    if "b" in parts:
        results["b"] = part_b(args.device, args.time_budget, args.seeds)
        best = results["b"]["best"]
        for name, run in best.items():
            if run is None:
                print(f"(b) {name}: did not reach 0.9 within the budget", flush=True)
            else:
                print(
                    f"(b) {name}: 0.9 in a median {run['seconds']:.3f} s of training over {args.seeds} seeds "
                    f"(steps {run['steps_per_seed']}; {run['num_envs']} envs, {run['settings']})",
                    flush=True,
                )
        print(f"(b) time-to-0.9 ratio (sb3-dqn / dqn): {results['b']['ratio']}", flush=True)
    if "c" in parts:
        results["c"] = part_c(args.device, args.budget)
        print(f"(c) normalised scores after {args.budget:,} steps (16 envs, seed 0):")
        for row in results["c"]:
            score = "n/a" if row["score"] is None else f"{row['score']:.3f}"
            print(f"    {row['env']:<38} {row['agent']:<9} {score}  {row.get('note', '')}")
    if "g" in parts:
        results["g"] = part_g(args.device, [int(size) for size in args.sizes.split(",")], args.vector_steps)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
