"""Every registered env's reference policies, scored by ``nlp_envs.evaluate`` side by side.

    python benchmarks/reference_policies.py [--episodes 1000] [--seed 0] [--envs SUBSTRING ...]

Envs with a held-out split (NextWord, the classification and QA presets) are scored on it
(``split="test"``). Prints one Markdown row per (env, policy): mean return and the task metrics.
"""

from __future__ import annotations

import argparse
import inspect

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

import nlp_envs


def has_split(env_id: str) -> bool:
    core = load_env_creator(gym.spec(env_id).vector_entry_point).core_class
    return "split" in inspect.signature(core.__init__).parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", nargs="*", default=[], help="only ids containing one of these substrings")
    args = parser.parse_args()
    print("| env | policy | mean return | metrics |")
    print("|---|---|---|---|")
    for env_id in nlp_envs.env_ids():
        if args.envs and not any(part in env_id for part in args.envs):
            continue
        kwargs = {"split": "test"} if has_split(env_id) else {}
        for name in nlp_envs.reference_policies(env_id):
            result = nlp_envs.evaluate(env_id, name, episodes=args.episodes, seed=args.seed, env_kwargs=kwargs)
            metrics = ", ".join(f"{key}={value:.3f}" for key, value in result.metrics.items())
            print(f"| {env_id} | {name} | {result.mean_return:.3f} | {metrics} |", flush=True)


if __name__ == "__main__":
    main()
