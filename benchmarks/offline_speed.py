"""Our ``cql`` against d3rlpy's ``DiscreteCQL``: the same data, networks and steps, in one run.

Both learn from the same named dataset (``--dataset``, built first when missing) with the same
hyper-parameters: an MLP of ``--hidden`` ReLU layers, Adam at learning rate 1e-3, batches of
``--batch-size`` transitions, gamma 0.99, alpha 1.0, double-DQN targets with Huber TD errors, a target
copy every 250 steps and gradient norms clipped at 10; each takes ``--steps`` gradient steps on
``--threads`` torch threads. d3rlpy gets the dataset as an ``MDPDataset`` of the same observations,
acts, rewards, terminals and timeouts. Timed: ``cql.learn(steps)`` and d3rlpy's ``fit(dataset,
n_steps=steps)`` (sampling and updates, without its logger, progress bar or checkpoints), both
built beforehand; by the wall clock and by the process's CPU time (less disturbed by other
processes on a busy machine). The runs alternate (ours, d3rlpy, then d3rlpy, ours, ...) over
``--repeats`` rounds so that load from other processes hits both alike, and the load average is
printed. Each trained policy is then scored with :func:`nlp_envs.evaluation.evaluate` on the
dataset's evaluation episodes (normalised), acting greedily among the acts the env allows
(d3rlpy's Q values of the forbidden acts are masked out at acting time; unlike ours, d3rlpy's
conservative log-sum-exp runs over every act, since it knows no masks).

Printed: per library the median wall seconds, gradient steps per second (wall and CPU), and the
normalised scores; then the speed ratio ours/d3rlpy. The goal (issue 13): ours at least 3x faster
per gradient step at an equal or better score.

d3rlpy is not a dependency of nlp-envs (d3rlpy 2.8.1 pins gymnasium==1.0.0 but runs with 1.4), so
the benchmark runs in a venv of its own. A recipe (torch first, CPU build, then the rest without
letting d3rlpy's pins replace gymnasium)::

    python -m venv /tmp/d3venv
    /tmp/d3venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/d3venv/bin/pip install --no-deps d3rlpy==2.8.1 stable-baselines3
    /tmp/d3venv/bin/pip install gymnasium==1.4.0 gym h5py tqdm structlog colorama dataclasses-json \\
        scikit-learn pluggy pyyaml 'minari[hdf5]==0.5.4' chitchat-dataset==0.9.0 chatterbot-corpus==1.3.3
    /tmp/d3venv/bin/pip install --no-deps -e . recbole==1.2.1  # recbole: the recommendation logs' data

Usage: ``/tmp/d3venv/bin/python benchmarks/offline_speed.py [--dataset ID] [--steps 2000]
[--repeats 1] [--threads 1] [--device cpu] [--json FILE]`` (``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from offline_scores import ensure_dataset, write_json  # this folder is on sys.path when the script runs

import nlp_agents
import nlp_envs  # noqa: F401  (registers the envs)
from nlp_envs.core import allowed_acts
from nlp_envs.evaluation import evaluate
from nlp_envs.offline import Transitions, load_transitions

DEFAULT_DATASET = "nlp_envs/dialogue-rule-eps30-v0"
SHARED: dict[str, Any] = {
    "learning_rate": 1e-3,
    "gamma": 0.99,
    "alpha": 1.0,
    "target_update_interval": 250,
    "max_grad_norm": 10.0,
}
"""The hyper-parameters both sides get (beside the network, the batch size and the threads)."""


def import_d3rlpy() -> ModuleType:
    """The ``d3rlpy`` module, or SystemExit with one line saying how to get it."""
    try:
        import d3rlpy
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"offline_speed: d3rlpy is not installed in the Python environment {sys.prefix} ({error}); "
            "run this benchmark in a venv with d3rlpy 2.8.1 (the recipe is in this script's docstring)."
        ) from None
    import logging

    import structlog

    # d3rlpy logs every fit's dataset and parameters at level info; the comparison prints its own lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return d3rlpy


def mdp_dataset(d3rlpy: ModuleType, data: Transitions, n_actions: int) -> Any:
    """``data`` as a d3rlpy ``MDPDataset``: the same arrays; episodes end at terminations or truncations."""
    return d3rlpy.dataset.MDPDataset(
        observations=data.observations,
        actions=data.actions,
        rewards=data.rewards,
        terminals=data.terminations.astype(np.float32),
        timeouts=data.truncations.astype(np.float32),
        action_space=d3rlpy.constants.ActionSpace.DISCRETE,
        action_size=n_actions,
    )


def d3rlpy_cql(d3rlpy: ModuleType, hidden: tuple[int, ...], batch_size: int, device: str, seed: int) -> Any:
    """d3rlpy's DiscreteCQL with :data:`SHARED`'s hyper-parameters and ``hidden`` ReLU layers."""
    d3rlpy.seed(seed)
    config = d3rlpy.algos.DiscreteCQLConfig(
        learning_rate=SHARED["learning_rate"],
        gamma=SHARED["gamma"],
        alpha=SHARED["alpha"],
        target_update_interval=SHARED["target_update_interval"],
        batch_size=batch_size,
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=list(hidden)),
        optim_factory=d3rlpy.optimizers.AdamFactory(clip_grad_norm=SHARED["max_grad_norm"]),
    )
    return config.create(device="cuda:0" if device == "cuda" else "cpu:0")


def d3rlpy_policy(algo: Any, n_actions: int) -> Callable[[np.ndarray, Any], np.ndarray]:
    """``policy(observations, env)``: the allowed act of highest Q value of a trained d3rlpy algo."""

    def policy(observations: np.ndarray, env: Any) -> np.ndarray:
        rows = len(observations)
        values = np.stack(
            [algo.predict_value(observations, np.full(rows, act, dtype=np.int64)) for act in range(n_actions)], axis=1
        )
        masks = env.unwrapped.core.action_masks()
        if masks is not None:
            values = np.where(allowed_acts(masks), values, -np.inf)
        return values.argmax(axis=1)

    return policy


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process-CPU seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_ours(data: Transitions, args: argparse.Namespace, seed: int) -> tuple[tuple[float, float], Any]:
    """Times of ``cql.learn(steps)`` and the trained agent."""
    env = gym.make_vec(data.env_id, num_envs=1, vectorization_mode="vector_entry_point", **data.env_kwargs)
    try:
        agent = nlp_agents.make(
            "cql",
            env,
            seed=seed,
            device=args.device,
            dataset=data,
            batch_size=args.batch_size,
            hidden_sizes=args.hidden,
            torch_threads=args.threads,
            **SHARED,
        )
        return timed(lambda: agent.learn(args.steps)), agent
    finally:
        env.close()


def run_d3rlpy(
    d3rlpy: ModuleType, dataset: Any, args: argparse.Namespace, seed: int
) -> tuple[tuple[float, float], Any]:
    """Times of d3rlpy's ``fit(dataset, n_steps=steps)`` (built beforehand) and the trained algo."""
    algo = d3rlpy_cql(d3rlpy, args.hidden, args.batch_size, args.device, seed)
    algo.build_with_dataset(dataset)
    fit = lambda: algo.fit(  # noqa: E731
        dataset,
        n_steps=args.steps,
        n_steps_per_epoch=args.steps,
        show_progress=False,
        save_interval=args.steps + 1,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    return timed(fit), algo


def summary(times: list[tuple[float, float]], scores: list[float], steps: int) -> dict[str, Any]:
    """Medians of the wall and CPU seconds, gradient steps per second by each, and the scores."""
    wall = statistics.median(t[0] for t in times)
    cpu = statistics.median(t[1] for t in times)
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "steps_per_second": steps / wall,
        "steps_per_cpu_second": steps / cpu,
        "normalized_scores": scores,
        "mean_normalized_score": float(np.mean(scores)),
    }


def main() -> None:
    """Parse the arguments, run both sides alternately, print (and write) the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="a named dataset id, a Minari id or a path")
    parser.add_argument("--steps", type=int, default=2000, help="gradient steps of each run")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of one run each (seeds 0 ..)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", default="64,64", help="hidden layer widths, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both sides (CPU)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--minari-path", help="Minari's local datasets folder (default: MINARI_DATASETS_PATH)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    try:
        args.hidden = tuple(int(width) for width in args.hidden.split(","))
    except ValueError:
        parser.error(f"--hidden must be comma-separated integers such as 64,64, got {args.hidden!r}.")
    if min(args.steps, args.repeats, args.batch_size, args.threads, *args.hidden) < 1:
        parser.error("--steps, --repeats, --batch-size, --threads and each --hidden width must be at least 1.")
    d3rlpy = import_d3rlpy()
    if args.minari_path:
        os.environ["MINARI_DATASETS_PATH"] = args.minari_path
    torch.set_num_threads(args.threads)  # d3rlpy's threads; ours sets its own from torch_threads
    metadata = ensure_dataset(args.dataset)
    data = load_transitions(args.dataset)
    env = gym.make(data.env_id, **data.env_kwargs)
    n_actions = int(env.action_space.n)  # type: ignore[attr-defined]
    env.close()
    dataset = mdp_dataset(d3rlpy, data, n_actions)

    def score(policy: Any) -> float:
        return evaluate(
            data.env_id,
            policy,
            episodes=int(metadata["eval_episodes"]),
            seed=int(metadata["eval_seed"]),
            env_kwargs=data.env_kwargs,
        ).normalized_score

    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {"nlp_agents cql": [], "d3rlpy DiscreteCQL": []}
    trained: dict[str, list[Any]] = {name: [] for name in times}
    for seed in range(args.repeats):
        order = ("nlp_agents cql", "d3rlpy DiscreteCQL")
        for side in order if seed % 2 == 0 else order[::-1]:
            took, model = (
                run_ours(data, args, seed) if side == "nlp_agents cql" else run_d3rlpy(d3rlpy, dataset, args, seed)
            )
            times[side].append(took)
            trained[side].append(model)
            print(f"{side} seed {seed}: {took[0]:.1f} s wall, {took[1]:.1f} s CPU for {args.steps} steps", flush=True)
    load_after = os.getloadavg()
    results = {}
    for side in times:
        scores = [
            score(model if side == "nlp_agents cql" else d3rlpy_policy(model, n_actions)) for model in trained[side]
        ]
        results[side] = summary(times[side], scores, args.steps)
    ours, theirs = results["nlp_agents cql"], results["d3rlpy DiscreteCQL"]
    record = {
        "dataset": args.dataset,
        "transitions": len(data),
        "behaviour_normalized_score": metadata["behaviour_normalized_score"],
        "steps": args.steps,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "hidden": list(args.hidden),
        "threads": args.threads,
        "device": args.device,
        "cpu_count": os.cpu_count(),
        "load_average_1min": [load_before[0], load_after[0]],
        "d3rlpy_version": d3rlpy.__version__,
        "torch_version": torch.__version__,
        "results": results,
        "speedup_wall": ours["steps_per_second"] / theirs["steps_per_second"],
        "speedup_cpu": ours["steps_per_cpu_second"] / theirs["steps_per_cpu_second"],
    }
    print(
        f"{args.dataset} ({len(data)} transitions; behaviour policy {metadata['behaviour_normalized_score']:.3f}), "
        f"{args.steps} gradient steps of batch {args.batch_size}, MLP {args.hidden}, {args.threads} thread(s), "
        f"{args.device}; load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for side, result in results.items():
        print(
            f"  {side:20s} {result['wall_seconds']:7.2f} s wall  {result['steps_per_second']:8.1f} steps/s  "
            f"{result['steps_per_cpu_second']:8.1f} steps/CPU-s  normalised score "
            f"{' '.join(f'{s:.3f}' for s in result['normalized_scores'])}"
        )
    print(
        f"  ours / d3rlpy per gradient step: {record['speedup_wall']:.1f}x (wall), {record['speedup_cpu']:.1f}x (CPU)"
    )
    if args.json:
        write_json(args.json, record)


if __name__ == "__main__":
    main()
