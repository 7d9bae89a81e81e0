"""Offline agents against their data: ``bc`` and ``cql`` trained on the named logged datasets, scored online.

For each dataset (``--datasets``, default the customer-service logs on Dialogue-v0 and
DialogueNoisy-v0 and the recommendation logs) and each agent (``--agents``, default ``bc,cql``):
``--seeds`` agents (seeds 0, 1, ...) each take ``--steps`` gradient steps on the dataset and are
scored with :func:`nlp_envs.evaluation.evaluate` (normalised) on the dataset's evaluation episodes
(its metadata's ``eval_episodes`` from ``eval_seed``: the episodes the behaviour policy's score was
measured on, none of which the dataset holds). Printed per dataset: the behaviour policy's
normalised score (from the dataset's metadata), then per agent the mean normalised score over the
seeds with its 95% bootstrap interval (:func:`nlp_envs.leaderboard.stats.stratified_bootstrap_ci`),
the per-seed scores, and whether the interval lies above the behaviour policy's score and above
the other agents' means. The goal (issue 13): CQL above the behaviour policy and above BC.

Missing named datasets are built first (:func:`nlp_envs.offline.build_named`) into Minari's local
folder (``MINARI_DATASETS_PATH``, or ``--minari-path``).

Usage: ``python benchmarks/offline_scores.py [--steps 5000] [--seeds 5] [--datasets ID,...]
[--agents bc,cql] [--hyperparams '{"cql": {"alpha": 1.0}}'] [--minari-path DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from typing import Any, BinaryIO

import gymnasium as gym
import numpy as np

import nlp_agents
import nlp_envs  # noqa: F401  (registers the envs)
from nlp_envs.atomic import atomic_write
from nlp_envs.evaluation import evaluate
from nlp_envs.leaderboard import stats
from nlp_envs.offline import Transitions, build_named, dataset_metadata, load_transitions, named_datasets
from nlp_envs.offline.datasets import METADATA_KEY, DatasetError

DEFAULT_DATASETS = (
    "nlp_envs/dialogue-rule-eps30-v0",
    "nlp_envs/dialogue-noisy-rule-eps30-v0",
    "nlp_envs/recommendation-popular-eps20-v0",
)
"""The datasets of the issue's figures: customer-service logs (two envs) and recommendation logs."""


def ensure_dataset(dataset_id: str) -> dict[str, Any]:
    """The nlp-envs metadata of dataset ``dataset_id``; a named one is built first when it is missing.

    Raises:
        SystemExit: a named dataset on disk was built from another definition than the one in
            ``named_datasets.toml`` now (its figures would be of other data).
        DatasetError: an unnamed dataset is missing or unusable.
    """
    named = named_datasets().get(dataset_id)
    try:
        metadata = dataset_metadata(dataset_id)[METADATA_KEY]
    except DatasetError:
        if named is None:
            raise
        began = time.perf_counter()
        build_named(dataset_id)
        gc.collect()  # the written dataset's HDF5 file stays open (and locked) until its object is collected
        print(f"built {dataset_id} in {time.perf_counter() - began:.0f} s", flush=True)
        metadata = dataset_metadata(dataset_id)[METADATA_KEY]
    if named is not None:
        defined = {"env_id": named.env_id, "epsilon": named.epsilon, "episodes": named.episodes, "seed": named.seed}
        stale = {key: metadata.get(key) for key, value in defined.items() if metadata.get(key) != value}
        if stale:
            raise SystemExit(
                f"dataset {dataset_id} on disk has {stale}, but named_datasets.toml now defines "
                f"{ {key: defined[key] for key in stale} }; delete its folder in MINARI_DATASETS_PATH to rebuild it."
            )
    return metadata


def train_and_score(
    agent_name: str,
    data: Transitions,
    metadata: dict[str, Any],
    seed: int,
    steps: int,
    device: str,
    hyperparams: dict[str, Any],
) -> tuple[float, float]:
    """The normalised score of ``agent_name`` (seed ``seed``) after ``steps`` gradient steps, and learn's seconds."""
    env = gym.make_vec(data.env_id, num_envs=1, vectorization_mode="vector_entry_point", **data.env_kwargs)
    try:
        agent = nlp_agents.make(agent_name, env, seed=seed, device=device, dataset=data, **hyperparams)
        began = time.perf_counter()
        agent.learn(steps)
        seconds = time.perf_counter() - began
    finally:
        env.close()
    scored = evaluate(
        data.env_id,
        agent,
        episodes=int(metadata["eval_episodes"]),
        seed=int(metadata["eval_seed"]),
        env_kwargs=data.env_kwargs,
    )
    return scored.normalized_score, seconds


def write_json(path: str, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON to ``path``, crash-safe (:func:`nlp_envs.atomic.atomic_write`)."""

    def write(file: BinaryIO) -> None:
        file.write(json.dumps(record, indent=2).encode())

    atomic_write(path, write)


def summarise(scores: list[float], rng: np.random.Generator) -> dict[str, Any]:
    """Mean and 95% stratified-bootstrap interval of one agent's per-seed normalised scores."""
    array = np.asarray(scores, dtype=np.float64)[:, None]
    low, high = stats.stratified_bootstrap_ci(array, stats.mean, rng)
    return {"mean": stats.mean(array), "ci95": [float(low), float(high)], "scores": list(scores)}


def run(
    datasets: list[str], agents: list[str], seeds: int, steps: int, device: str, hyperparams: dict[str, Any]
) -> dict[str, Any]:
    """Train and score every agent on every dataset; the results by dataset id."""
    results: dict[str, Any] = {}
    for dataset_id in datasets:
        metadata = ensure_dataset(dataset_id)
        data = load_transitions(dataset_id)
        row: dict[str, Any] = {
            "env_id": data.env_id,
            "transitions": len(data),
            "episodes": metadata["episodes"],
            "epsilon": metadata["epsilon"],
            "dataset_hash": data.dataset_hash,
            "behaviour": metadata["behaviour_normalized_score"],
            "agents": {},
        }
        for agent_name in agents:
            scores, seconds = [], []
            for seed in range(seeds):
                score, took = train_and_score(
                    agent_name, data, metadata, seed, steps, device, hyperparams.get(agent_name, {})
                )
                scores.append(score)
                seconds.append(took)
                print(f"{dataset_id} {agent_name} seed {seed}: {score:.3f} ({took:.1f} s)", flush=True)
            row["agents"][agent_name] = {
                **summarise(scores, np.random.default_rng(0)),
                "learn_seconds_median": float(np.median(seconds)),
            }
        results[dataset_id] = row
    return results


def report(results: dict[str, Any]) -> str:
    """The results as a text table: per dataset the behaviour score, then each agent's mean [95% CI]."""
    lines = []
    for dataset_id, row in results.items():
        behaviour = row["behaviour"]
        lines.append(
            f"{dataset_id} ({row['env_id']}, {row['episodes']} episodes, {row['transitions']} transitions, "
            f"epsilon {row['epsilon']:g}): behaviour policy {behaviour:.3f}"
        )
        means = {name: agent["mean"] for name, agent in row["agents"].items()}
        for name, agent in row["agents"].items():
            low, high = agent["ci95"]
            above = ["behaviour"] if low > behaviour else []
            above += [other for other, value in means.items() if other != name and low > value]
            lines.append(
                f"  {name:6s} {agent['mean']:.3f} [{low:.3f}, {high:.3f}]  seeds "
                f"{' '.join(f'{s:.3f}' for s in agent['scores'])}  CI above: {', '.join(above) or '-'}"
            )
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, run, print the table (and write the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="named dataset ids, comma-separated")
    parser.add_argument("--agents", default="bc,cql", help="offline agents, comma-separated")
    parser.add_argument("--seeds", type=int, default=5, help="agent seeds 0 .. SEEDS-1 per agent and dataset")
    parser.add_argument("--steps", type=int, default=5000, help="gradient steps per agent")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--hyperparams", default="{}", help='JSON {agent: {name: value}}, e.g. \'{"cql": {"alpha": 0.5}}\''
    )
    parser.add_argument("--minari-path", help="Minari's local datasets folder (default: MINARI_DATASETS_PATH)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.seeds < 1 or args.steps < 1:
        parser.error(f"--seeds and --steps must be at least 1, got {args.seeds} and {args.steps}.")
    try:
        hyperparams = json.loads(args.hyperparams)
    except json.JSONDecodeError as error:
        parser.error(f'--hyperparams is not JSON ({error}); pass e.g. \'{{"cql": {{"alpha": 0.5}}}}\'.')
    if not isinstance(hyperparams, dict) or not all(isinstance(value, dict) for value in hyperparams.values()):
        parser.error(
            f"--hyperparams must be a JSON object of objects {{agent: {{name: value}}}}, got {args.hyperparams}."
        )
    if args.minari_path:
        os.environ["MINARI_DATASETS_PATH"] = args.minari_path
    datasets = [name for name in args.datasets.split(",") if name]
    agents = [name for name in args.agents.split(",") if name]
    results = run(datasets, agents, args.seeds, args.steps, args.device, hyperparams)
    print(report(results))
    if args.json:
        record = {"steps": args.steps, "seeds": args.seeds, "hyperparams": hyperparams, "results": results}
        write_json(args.json, record)


if __name__ == "__main__":
    main()
