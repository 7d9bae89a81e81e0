"""Run a suite's cells (train, then evaluate on held-out episodes) and record them in SQLite.

Agents are found through the plugin system (``agents.make``): nothing here names an agent. A cell
is trained on its env's training kwargs and scored with :func:`nlp_envs.evaluate` on the env's
evaluation kwargs (its held-out split) and on evaluation seeds disjoint from the training seeds.
Executors: ``local`` (in this process, or ``--jobs J`` worker processes) and ``ray`` (a Ray
cluster, ``ray`` being an optional dependency); every executor gives the same numbers.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import multiprocessing
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym

from nlp_envs.evaluation import Evaluation, evaluate
from nlp_envs.leaderboard.store import CellResult, ResultStore
from nlp_envs.leaderboard.suites import Cell
from nlp_envs.progress import StepBar

# Evaluation episodes use seeds far from the training slots' seeds (0 .. num_envs + seed).
EVAL_SEED_OFFSET = 1_000_000
CURVE_SEED_OFFSET = 2_000_000
EXECUTORS = ("local", "ray")
_TRACKED_DISTRIBUTIONS = ("nlp-envs", "torch", "gymnasium", "stable-baselines3", "numpy")


class CellSkipped(Exception):
    """The agent cannot handle this env (e.g. a table agent on a huge observation space)."""


@dataclass
class RunSummary:
    """What a :func:`run_cells` call did."""

    finished: list[CellResult] = field(default_factory=list)
    already_done: int = 0
    skipped: list[tuple[Cell, str]] = field(default_factory=list)
    failed: list[tuple[Cell, str]] = field(default_factory=list)


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def environment_versions() -> dict[str, str]:
    """Versions of Python, the tracked libraries and every plugin distribution of agents."""
    import agents

    versions = {"python": platform.python_version()}
    for name in _TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    for provider in agents.available().values():
        distribution, _, version = provider.rpartition(" ")
        versions.setdefault(distribution or provider, version)
    return versions


def git_commit() -> str:
    """The commit of the source tree the package runs from, or ``"unknown"``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def run_cell(cell: Cell, on_steps: Callable[[int, int], None] | None = None) -> CellResult:
    """Train one agent on one env with one seed, evaluate it, and return the record.

    Args:
        cell: what to run.
        on_steps: called as ``on_steps(done, total)`` while training (for a progress bar).

    Raises:
        CellSkipped: the agent does not support this env's spaces.
    """
    import agents

    started = time.perf_counter()
    device = resolve_device(cell.device)
    env = gym.make_vec(cell.env.id, num_envs=cell.num_envs, vectorization_mode="vector_entry_point", **cell.env.kwargs)
    try:
        try:
            agent = agents.make(cell.agent, env, seed=cell.seed, device=device, **cell.hyperparams)
        except agents.UnsupportedEnvError as error:
            raise CellSkipped(str(error)) from None
        total = cell.env.steps
        checkpoints = [max(1, round(total * (k + 1) / cell.curve_points)) for k in range(cell.curve_points)]
        curve: list[list[float]] = []
        evaluation_time = 0.0

        def score(episodes: int, seed_offset: int) -> Evaluation:
            return evaluate(
                cell.env.id, agent, episodes=episodes, seed=seed_offset + cell.seed, env_kwargs=cell.env.eval_kwargs
            )

        def score_now(done: int) -> None:
            nonlocal evaluation_time
            began = time.perf_counter()
            curve.append([float(done), score(cell.curve_episodes, CURVE_SEED_OFFSET).mean_return])
            evaluation_time += time.perf_counter() - began

        def callback(_agent: Any, done: int) -> bool:
            while checkpoints and done >= checkpoints[0]:
                checkpoints.pop(0)
                score_now(done)
            if on_steps is not None:
                on_steps(min(done, total), total)
            return True

        training_started = time.perf_counter()
        agent.learn(total, callback=callback)
        training_time = time.perf_counter() - training_started - evaluation_time
        train_steps = int(getattr(agent, "num_timesteps", total))
        if checkpoints:
            score_now(train_steps)
        final = score(cell.eval_episodes, EVAL_SEED_OFFSET)
    finally:
        env.close()
    return CellResult(
        suite=cell.suite,
        agent=cell.agent,
        env_id=cell.env.id,
        env_name=cell.env.name,
        seed=cell.seed,
        config_hash=cell.config_hash,
        config=cell.config,
        returns=[float(value) for value in final.returns],
        mean_return=final.mean_return,
        normalized_score=final.normalized_score,
        random_return=final.random_return,
        oracle_return=final.oracle_return,
        metrics=final.metrics,
        learning_curve=curve,
        train_steps=train_steps,
        steps_per_second=train_steps / max(training_time, 1e-9),
        wall_time=time.perf_counter() - started,
        device=device,
        versions=environment_versions(),
        git_commit=git_commit(),
    )


def _run_cell_quietly(cell: Cell, on_steps: Callable[[int, int], None] | None = None) -> CellResult | tuple[str, str]:
    """Run a cell; a result, or ``("skipped" | "failed", reason)`` instead of raising."""
    try:
        return run_cell(cell, on_steps)
    except CellSkipped as skipped:
        return ("skipped", str(skipped))
    except Exception:
        return ("failed", traceback.format_exc(limit=8))


class Progress:
    """Plain-text progress: a line per finished cell, and a step bar when writing to a terminal."""

    def __init__(self, total_cells: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.stream = total_cells, 0, stream
        self.live = stream.isatty()

    def steps(self, cell: Cell) -> Callable[[int, int], None]:
        """A step-bar callback ``(done, total)`` for one cell (drawn only on a terminal)."""
        bar = StepBar(cell.env.steps, f"{cell.agent} on {cell.env.id} seed {cell.seed}", self.stream)
        return lambda done, _total: bar.update(done)

    def cell(self, cell: Cell, outcome: str) -> None:
        """Report one finished, skipped or failed cell."""
        self.done += 1
        clear = "\r\033[K" if self.live else ""
        self.stream.write(
            f"{clear}[{self.done}/{self.total}] {cell.agent} on {cell.env.id} seed {cell.seed}: {outcome}\n"
        )
        self.stream.flush()


def _outcome(summary: RunSummary, store: ResultStore, cell: Cell, result: CellResult | tuple[str, str]) -> str:
    if isinstance(result, CellResult):
        store.add(result)
        summary.finished.append(result)
        return (
            f"score {result.normalized_score:+.3f}, return {result.mean_return:+.3f}, "
            f"{result.steps_per_second:,.0f} steps/s, {result.wall_time:.1f} s"
        )
    kind, reason = result
    (summary.skipped if kind == "skipped" else summary.failed).append((cell, reason))
    return f"{kind}: {reason.strip().splitlines()[-1]}"


def run_cells(
    cells: Sequence[Cell],
    store: ResultStore,
    *,
    executor: str = "local",
    jobs: int = 1,
    address: str | None = None,
    stream: TextIO = sys.stderr,
) -> RunSummary:
    """Run every cell not yet in ``store``, writing each to it as soon as it finishes."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}.")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}.")
    summary = RunSummary()
    done = store.finished_keys()
    pending = [cell for cell in cells if cell.key not in done]
    summary.already_done = len(cells) - len(pending)
    progress = Progress(len(pending), stream)
    if summary.already_done:
        stream.write(f"{summary.already_done} of {len(cells)} cells are already in {store.path}; skipping them.\n")
    for cell, result in _execute(pending, executor, jobs, address, progress):
        progress.cell(cell, _outcome(summary, store, cell, result))
    return summary


def _execute(
    cells: list[Cell], executor: str, jobs: int, address: str | None, progress: Progress
) -> Iterator[tuple[Cell, CellResult | tuple[str, str]]]:
    if executor == "ray":
        yield from _execute_ray(cells, address)
    elif jobs == 1:
        for cell in cells:
            yield cell, _run_cell_quietly(cell, progress.steps(cell))
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_run_cell_quietly, cell): cell for cell in cells}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()


def _execute_ray(cells: list[Cell], address: str | None) -> Iterator[tuple[Cell, CellResult | tuple[str, str]]]:
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "--executor ray needs Ray, which is not installed; install it with: pip install 'nlp-envs[ray]'"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(_run_cell_quietly)
        refs = {remote.remote(cell): cell for cell in cells}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            yield refs[ready[0]], ray.get(ready[0])
    finally:
        if started_here:
            ray.shutdown()
