"""What writing TensorBoard scalars costs: the same training with and without the writer, side by side.

For each agent (``--agents``, default ``dqn,sb3-ppo``): the same env, seed and number of steps,
trained ``--repeats`` times without a logger and with a :class:`~nlp_agents.logger.TensorBoardLogger`
at its default interval (:data:`~nlp_agents.logger.DEFAULT_INTERVAL` env steps), alternating which
goes first so that load from other processes hits both alike. Only ``learn`` is timed (not building
the agent), by the wall clock and by the CPU time of the process (which counts the writer's thread
too, and is less disturbed by other processes on a busy machine). Printed per agent: the median
seconds of each side, the ratio logged/plain of each pair and their median, and the overhead in
percent (the goal is at most 5%), for both clocks; and, less noisy on a busy machine, the share of
the logged runs' wall time spent inside the logging code itself (``in_logging_percent``: the calls
of :class:`~nlp_agents.logger.EpisodeLog`, the agent's ``training_scalars`` among them, timed one by one).

Usage: ``python benchmarks/tensorboard_overhead.py [--env nlp_envs/NextWord-v0] [--steps 10000]
[--repeats 3] [--agents dqn,sb3-ppo]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import gymnasium as gym

import nlp_agents
import nlp_envs  # noqa: F401  (registers the envs)
from nlp_agents.logger import DEFAULT_INTERVAL, EpisodeLog

IN_LOGGING = [0.0]
"""Seconds spent in the timed methods of EpisodeLog (see :func:`time_logging_calls`)."""


def time_logging_calls() -> None:
    """Wrap the methods the learning loops call on their EpisodeLog so that their time adds up in IN_LOGGING."""
    for name in ("start", "step", "add_episodes", "due", "write", "finish"):
        method = getattr(EpisodeLog, name)

        def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                IN_LOGGING[0] += time.perf_counter() - began

        setattr(EpisodeLog, name, timed)


def timed_learn(
    agent_name: str, env_id: str, steps: int, num_envs: int, tensorboard: str | None
) -> tuple[float, float]:
    """Wall and CPU seconds of ``learn(steps)`` for a fresh agent (seed 0), with or without a TensorBoard folder."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    try:
        agent = nlp_agents.make(agent_name, env, seed=0, device="cpu", tensorboard=tensorboard)
        wall, cpu = time.perf_counter(), time.process_time()
        agent.learn(steps)
        if tensorboard is not None:
            agent.logger.close()  # the writer's last work counts too
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        env.close()


def measure(agent_name: str, env_id: str, steps: int, num_envs: int, repeats: int) -> dict[str, Any]:
    """``repeats`` pairs of runs (plain and logged, alternating order) and their ratios."""
    plain: list[tuple[float, float]] = []
    logged: list[tuple[float, float]] = []
    IN_LOGGING[0] = 0.0
    with tempfile.TemporaryDirectory() as folder:
        timed_learn(agent_name, env_id, min(steps, 2 * num_envs), num_envs, None)  # warm up imports and caches
        for repeat in range(repeats):
            order = ("plain", "logged") if repeat % 2 == 0 else ("logged", "plain")
            for side in order:
                run = f"{folder}/{agent_name}-{repeat}" if side == "logged" else None
                (logged if side == "logged" else plain).append(timed_learn(agent_name, env_id, steps, num_envs, run))
    result: dict[str, Any] = {
        "agent": agent_name,
        "env": env_id,
        "steps": steps,
        "num_envs": num_envs,
        "interval": DEFAULT_INTERVAL,
    }
    for index, clock in enumerate(("wall", "cpu")):
        ratios = [b[index] / a[index] for a, b in zip(plain, logged, strict=True)]
        result[f"{clock}_plain_s"] = round(statistics.median(run[index] for run in plain), 3)
        result[f"{clock}_logged_s"] = round(statistics.median(run[index] for run in logged), 3)
        result[f"{clock}_ratios"] = [round(ratio, 4) for ratio in ratios]
        result[f"{clock}_overhead_percent"] = round(100 * (statistics.median(ratios) - 1), 2)
    # write() and finish() call training_scalars, so it is inside; the warm-up is logged by none.
    result["in_logging_percent"] = round(100 * IN_LOGGING[0] / sum(run[0] for run in logged), 3)
    return result


def main() -> None:
    """Parse the arguments, measure each agent and print one JSON line per agent."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="nlp_envs/NextWord-v0")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agents", default="dqn,sb3-ppo")
    args = parser.parse_args()
    time_logging_calls()
    for agent_name in args.agents.split(","):
        print(json.dumps(measure(agent_name, args.env, args.steps, args.num_envs, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
