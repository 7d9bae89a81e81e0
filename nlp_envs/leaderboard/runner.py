"""Run a suite's cells (train, then evaluate on held-out episodes) and record them in SQLite.

Agents are found through the plugin system (``nlp_agents.make``): nothing here names an agent. A cell
is trained on its env's training kwargs and scored with :func:`nlp_envs.evaluate` on the env's
evaluation kwargs (its held-out split). Executors: ``local`` (in this process, or ``--jobs J``
worker processes) and ``ray`` (a Ray cluster, ``ray`` being an optional dependency); every
executor gives the same numbers.

Seeding rule (independent seeds, one held-out episode set). Episode streams are identified by the
seed of the vector slot that plays them (slot ``i`` of an env reset with seed ``b`` plays the
stream seeded ``b + i``). Slot seeds are split into blocks of :data:`SEED_STRIDE` (2**17):

- block 0, seeds ``0 .. eval_episodes-1``: the final evaluation of every cell;
- block 1, seeds ``SEED_STRIDE .. SEED_STRIDE + curve_episodes-1``: every learning-curve point;
- block ``s + 2``: training of the cells with seed ``s``; the agent gets ``(s + 2) * SEED_STRIDE``
  as its seed, so its ``num_envs`` slots play the streams seeded from there on.

With ``num_envs``, ``eval_episodes`` and ``curve_episodes`` at most :data:`SEED_STRIDE` (checked),
two seeds share no training stream, no training stream is ever evaluated on, and every agent and
seed of a suite is evaluated on the same episodes. Seeds go up to :data:`MAX_SEED`, so that every
slot seed fits the 32 bits that some libraries (NumPy's legacy seeding in SB3) accept. The rule
(:data:`SEEDING_RULE`) is part of each cell's config and config hash, so results made under
another rule are never taken for done.

Offline cells (a suite's ``[[offline]]`` entries): the agent is built with ``dataset=`` the logged
transitions and ``learn(n)`` takes ``n`` gradient steps, so ``steps``, ``train_steps``, the learning
curve's x values and ``steps_per_second`` count gradient steps. Its evaluation is the same as every
cell's (same blocks, same episodes). A process loads a dataset once and keeps the last one it loaded
(loading a few thousand episodes with Minari takes seconds, hashing its files a fraction of one);
a dataset whose files no longer match the hash in the cell's config fails the cell with a named reason.

A cell is never lost once trained: a figure that is not finite fails the cell with a named reason;
a result the database cannot take now (locked for too long, disk full) waits in the journal
``<db>.pending.jsonl`` and is written at the start of the next run; a ``--jobs`` worker that dies
is replaced and its cells run again, each alone (a cell that kills its worker twice fails with
"worker died"); Ctrl-C stops the run and the summary says what ran, failed and was left.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.metadata
import json
import multiprocessing
import platform
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym

from nlp_envs.evaluation import Evaluation, evaluate, takes_action_masks
from nlp_envs.leaderboard.store import CellResult, InvalidResultError, ResultStore, StoreWriteError, check_result
from nlp_envs.leaderboard.suites import Cell
from nlp_envs.progress import StepBar

SEED_STRIDE = 2**17
FINAL_EVAL_SEED = 0
CURVE_EVAL_SEED = SEED_STRIDE
MAX_SEED = 2**32 // SEED_STRIDE - 3
SEEDING_RULE = f"blocks of {SEED_STRIDE}: final evaluation, curve evaluation, then one block per seed"
EXECUTORS = ("local", "ray")
MASKS_IGNORED_NOTE = "agent ignores action masks"
RAY_CONNECT_TIMEOUT = 5.0
_TRACKED_DISTRIBUTIONS = ("nlp-envs", "torch", "gymnasium", "stable-baselines3", "numpy")

Outcome = CellResult | tuple[str, str]


class CellSkipped(Exception):
    """The agent cannot handle this env (e.g. a table agent on a huge observation space)."""


class ExecutorError(ValueError):
    """An executor that cannot run cells (e.g. no reachable Ray cluster); the message says why."""


@dataclass
class RunSummary:
    """What a :func:`run_cells` call did.

    Attributes:
        finished: results written to the database by this run.
        already_done: cells that were in the database before the run.
        skipped: cells the agent cannot handle, with the reason.
        failed: cells that failed, with the reason (a traceback, or one named line).
        kept: results that could not be written, with the reason; they wait in the journal.
        duplicates: results whose key another run wrote meanwhile (the stored row is kept).
        replayed: results from an earlier run's journal written at the start of this one.
        to_run: cells that were not done when the run started.
        interrupted: the run was stopped (Ctrl-C) before every cell was run.
    """

    finished: list[CellResult] = field(default_factory=list)
    already_done: int = 0
    skipped: list[tuple[Cell, str]] = field(default_factory=list)
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    kept: list[tuple[CellResult, str]] = field(default_factory=list)
    duplicates: list[CellResult] = field(default_factory=list)
    replayed: int = 0
    to_run: int = 0
    interrupted: bool = False

    @property
    def not_run(self) -> int:
        """Cells left unrun (by an interruption)."""
        handled = len(self.finished) + len(self.skipped) + len(self.failed) + len(self.kept) + len(self.duplicates)
        return self.to_run - handled


def env_name(cell: Cell) -> str:
    """The row label of a cell's env: the suite's name of the variant, else its id."""
    return getattr(cell.env, "name", "") or cell.env.id


def cell_config(cell: Cell) -> dict[str, Any]:
    """What decides a cell's result besides its key: the suite's config and the seeding rule."""
    return cell.config | {"seeding": SEEDING_RULE}


def cell_config_hash(cell: Cell) -> str:
    """The suite's config hash joined with :data:`SEEDING_RULE`.

    Results from another seeding rule (other training streams, other evaluation episodes) are
    not comparable, so they never count as done for this one.
    """
    return hashlib.sha256(f"{cell.config_hash}|{SEEDING_RULE}".encode()).hexdigest()[:16]


def cell_key(cell: Cell) -> tuple[str, str, str, int, str]:
    """A cell's identity in the results database: (suite, agent, env_name, seed, config hash)."""
    return (cell.suite, cell.agent, env_name(cell), cell.seed, cell_config_hash(cell))


def training_seed(seed: int, num_envs: int) -> int:
    """The seed a cell with seed ``seed`` gives its agent (and so its training slots).

    Raises:
        ValueError: ``seed`` is outside ``0 .. MAX_SEED`` or ``num_envs`` above :data:`SEED_STRIDE`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a cell's seed must be an integer in 0..{MAX_SEED}, got {seed!r}.")
    if not 1 <= num_envs <= SEED_STRIDE:
        raise ValueError(f"num_envs must be in 1..{SEED_STRIDE} (the seed block of one cell), got {num_envs}.")
    return (seed + 2) * SEED_STRIDE


def _check_episodes(cell: Cell) -> None:
    for name in ("eval_episodes", "curve_episodes"):
        if not 1 <= getattr(cell, name) <= SEED_STRIDE:
            raise ValueError(f"{name} must be in 1..{SEED_STRIDE} (one seed block), got {getattr(cell, name)}.")


def environment_versions() -> dict[str, str]:
    """Versions of Python, the tracked libraries and every plugin distribution of agents."""
    import nlp_agents

    versions = {"python": platform.python_version()}
    for name in _TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    for provider in nlp_agents.available().values():
        distribution, _, version = provider.rpartition(" ")
        versions.setdefault(distribution or provider, version)
    return versions


def _other_versions(
    skipped: list[Cell], stored: dict[tuple[str, str, str, int, str], tuple[str, dict[str, str]]]
) -> str:
    """A note on the skipped cells that ran under another version of nlp-envs or of their agent's plugin, or "".

    Their results stand as they ran (a new version may change an env's dynamics or an agent's code),
    so the user hears of it before their rows are mixed with this run's.
    """
    import nlp_agents

    here = environment_versions()
    providers = nlp_agents.available()
    changes: dict[str, set[str]] = {}
    count = 0
    for cell in skipped:
        versions = stored[cell_key(cell)][1]
        names = ["nlp-envs", providers.get(cell.agent, "").rpartition(" ")[0]]
        moved = [name for name in dict.fromkeys(names) if name and versions.get(name, "unknown") != here.get(name)]
        for name in moved:
            changes.setdefault(name, set()).add(versions.get(name, "unknown"))
        count += bool(moved)
    if not count:
        return ""
    described = "; ".join(
        f"{name} {', '.join(sorted(found))} (this run: {here.get(name)})" for name, found in sorted(changes.items())
    )
    return (
        f"note: {count} of the skipped cells ran under other versions: {described}. Their results stand as they "
        "ran; to run every cell under this version, give another --db."
    )


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


_LOADED: dict[tuple[str, str], Any] = {}
"""The transitions this process loaded last, keyed by (source, sha256): at most one dataset is held."""


def load_dataset(cell: Cell) -> Any:
    """The :class:`nlp_envs.offline.Transitions` of an offline cell's dataset, loaded once per process.

    Raises:
        ValueError: the cell has no dataset, or its files changed since the cell was made (their hash
            differs from the cell's config).
        nlp_envs.offline.DatasetError: the dataset cannot be loaded.
    """
    from nlp_envs.offline import dataset_hash, load_transitions

    if cell.dataset is None:
        raise ValueError(f"{_label(cell)} is not an offline cell: it has no dataset.")
    # Hashing the files each time (a fraction of a second) keeps the cache honest when they change.
    digest = dataset_hash(cell.dataset.source)
    if digest != cell.dataset.sha256:
        raise ValueError(
            f"dataset {cell.dataset.id} ({cell.dataset.source}) changed since the suite was read: its files hash "
            f"to {digest[:16]}..., the cell was made for {cell.dataset.sha256[:16]}...; "
            "run the suite again (the changed dataset makes new cells)."
        )
    key = (cell.dataset.source, digest)
    if key not in _LOADED:
        _LOADED.clear()  # hold one dataset at most: a suite's cells come entry by entry
        loaded = load_transitions(cell.dataset.source)
        if loaded.dataset_hash != digest:  # rewritten between the hash above and the read
            raise ValueError(
                f"dataset {cell.dataset.id} ({cell.dataset.source}) changed while it was read: its files hash to "
                f"{loaded.dataset_hash[:16]}... now, {digest[:16]}... a moment before; run the suite again when "
                "nothing writes it."
            )
        _LOADED[key] = loaded
    return _LOADED[key]


def run_cell(
    cell: Cell, on_steps: Callable[[int, int], None] | None = None, tensorboard: str | Path | None = None
) -> CellResult:
    """Train one agent on one env with one seed, evaluate it, and return the record.

    The agent trains with :func:`training_seed` and is evaluated on the suite's common held-out
    episodes (see the module docstring for the seeding rule). An offline cell's agent learns
    ``cell.env.steps`` gradient steps from the cell's dataset (:func:`load_dataset`).

    Args:
        cell: what to run.
        on_steps: called as ``on_steps(done, total)`` while training (for a progress bar).
        tensorboard: a folder; the cell then writes TensorBoard scalars to its run folder
            ``tensorboard/agent/env/seed-S``: the agent's own (see :mod:`nlp_agents.logger`), the
            evaluation's ``eval/normalized_score`` and ``eval/mean_return`` at each learning-curve
            point and ``eval/final_normalized_score``, ``eval/final_mean_return`` at the end (event
            files an earlier run of the cell left there are removed first). It changes no result
            (it is not part of the cell's config).

    Raises:
        CellSkipped: the agent does not support this env's spaces.
        nlp_agents.LoggerNotSupportedError: ``tensorboard`` is given and the agent has no ``set_logger``.
    """
    import nlp_agents
    from nlp_agents.base import has_masks, resolve_device
    from nlp_agents.logger import TensorBoardLogger, open_logger, run_folder

    started = time.perf_counter()
    device = str(resolve_device(cell.device, cell.agent))  # "auto" recorded as the device it became
    seed = training_seed(cell.seed, cell.num_envs)
    _check_episodes(cell)
    offline = {} if cell.dataset is None else {"dataset": load_dataset(cell)}
    env = gym.make_vec(cell.env.id, num_envs=cell.num_envs, vectorization_mode="vector_entry_point", **cell.env.kwargs)
    logger: TensorBoardLogger | None = None
    try:
        try:
            agent = nlp_agents.make(cell.agent, env, seed=seed, device=device, **offline, **cell.hyperparams)
        except nlp_agents.UnsupportedEnvError as error:
            raise CellSkipped(str(error)) from None
        if tensorboard is not None:
            # A cell runs again only when the store has no result of it: what an earlier run left is stale.
            folder = run_folder(tensorboard, cell.agent, env_name(cell), cell.seed)
            logger = open_logger(folder, agent, cell.agent, replace=True)
        notes = [MASKS_IGNORED_NOTE] if has_masks(env) and not takes_action_masks(agent) else []
        total = cell.env.steps
        checkpoints = [max(1, round(total * (k + 1) / cell.curve_points)) for k in range(cell.curve_points)]
        curve: list[list[float]] = []
        evaluation_time = 0.0

        def score(episodes: int, first_seed: int) -> Evaluation:
            return evaluate(cell.env.id, agent, episodes=episodes, seed=first_seed, env_kwargs=cell.env.eval_kwargs)

        def score_now(done: int) -> None:
            nonlocal evaluation_time
            began = time.perf_counter()
            evaluation = score(cell.curve_episodes, CURVE_EVAL_SEED)
            curve.append([float(done), evaluation.mean_return])
            if logger is not None:
                logger.scalars(
                    {"eval/normalized_score": evaluation.normalized_score, "eval/mean_return": evaluation.mean_return},
                    done,
                )
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
        final = score(cell.eval_episodes, FINAL_EVAL_SEED)
        if logger is not None:
            logger.scalars(
                {"eval/final_normalized_score": final.normalized_score, "eval/final_mean_return": final.mean_return},
                train_steps,
            )
    finally:
        env.close()
        if logger is not None:
            logger.close()
    return CellResult(
        suite=cell.suite,
        agent=cell.agent,
        env_id=cell.env.id,
        env_name=env_name(cell),
        seed=cell.seed,
        config_hash=cell_config_hash(cell),
        config=cell_config(cell),
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
        notes=notes,
    )


def _run_cell_quietly(
    cell: Cell, on_steps: Callable[[int, int], None] | None = None, tensorboard: str | Path | None = None
) -> Outcome:
    """Run a cell; a checked result, or ``("skipped" | "failed", reason)`` instead of raising."""
    try:
        result = run_cell(cell, on_steps, tensorboard)
        check_result(result)
    except CellSkipped as skipped:
        return ("skipped", str(skipped))
    except InvalidResultError as invalid:
        return ("failed", str(invalid))
    except Exception:
        return ("failed", traceback.format_exc(limit=8))
    return result


def _run_cell_remotely(cell: Cell, tensorboard: Path | None) -> Outcome:
    """:func:`_run_cell_quietly` without a progress bar (a Ray task)."""
    return _run_cell_quietly(cell, None, tensorboard)


def _label(cell: Cell) -> str:
    return f"{cell.agent} on {env_name(cell)} seed {cell.seed}"


def last_line(reason: str) -> str:
    """The last non-empty line of a reason (of a traceback: the exception)."""
    lines = [line for line in reason.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no reason given)"


class Progress:
    """Plain-text progress: a line per finished cell, and a step bar when writing to a terminal."""

    def __init__(self, total_cells: int, stream: TextIO | None = None) -> None:
        stream = sys.stderr if stream is None else stream  # at call time: the stderr of now, not of the import
        self.total, self.done, self.stream = total_cells, 0, stream
        self.live = stream.isatty()

    def steps(self, cell: Cell) -> Callable[[int, int], None]:
        """A step-bar callback ``(done, total)`` for one cell (drawn only on a terminal)."""
        bar = StepBar(cell.env.steps, _label(cell), self.stream)
        return lambda done, _total: bar.update(done)

    def cell(self, cell: Cell, outcome: str) -> None:
        """Report one finished, skipped or failed cell."""
        self.done += 1
        clear = "\r\033[K" if self.live else ""
        self.stream.write(f"{clear}[{self.done}/{self.total}] {_label(cell)}: {outcome}\n")
        self.stream.flush()


def _record(summary: RunSummary, store: ResultStore, cell: Cell, outcome: Outcome) -> str:
    """Store one outcome (or keep it in the journal) and say what happened, in one line."""
    if not isinstance(outcome, CellResult):
        kind, reason = outcome
        (summary.skipped if kind == "skipped" else summary.failed).append((cell, reason))
        return f"{kind}: {last_line(reason)}"
    result = outcome
    try:
        written = store.add(result)
    except KeyboardInterrupt:
        store.keep(result)  # written or not: replaying it is idempotent, and it is not lost
        raise
    except InvalidResultError as error:
        summary.failed.append((cell, str(error)))
        return f"failed: {error}"
    except StoreWriteError as error:
        try:
            journal = store.keep(result)
        except OSError as journal_error:
            reason = (
                f"{error} It could not be kept in {store.journal_path} nor in {store.fallback_journal_path} "
                f"either ({journal_error}); its record is on the next line, to keep by hand:\n"
                + json.dumps(dataclasses.asdict(result), sort_keys=True)
            )
            summary.failed.append((cell, reason))
            return f"failed: {reason}"
        reason = f"{error} Kept in {journal}; it is written into the database on the next run."
        summary.kept.append((result, reason))
        return f"not written: {reason}"
    if not written:
        summary.duplicates.append(result)
        return f"already in {store.path} (written by another run meanwhile); the stored row is kept"
    summary.finished.append(result)
    score = "undefined" if result.normalized_score != result.normalized_score else f"{result.normalized_score:+.3f}"
    notes = f" ({'; '.join(result.notes)})" if result.notes else ""
    return (
        f"score {score}, return {result.mean_return:+.3f}, "
        f"{result.steps_per_second:,.0f} steps/s, {result.wall_time:.1f} s{notes}"
    )


def run_cells(
    cells: Iterable[Cell],
    store: ResultStore,
    *,
    executor: str = "local",
    jobs: int = 1,
    address: str | None = None,
    stream: TextIO | None = None,
    tensorboard: str | Path | None = None,
) -> RunSummary:
    """Run every cell not yet in ``store``, writing each to it as soon as it finishes.

    Results an earlier run kept in the store's journal are written first. Ctrl-C
    (``KeyboardInterrupt``) stops the run: the summary then has ``interrupted`` set. With
    ``tensorboard``, each cell that runs writes its scalars to ``tensorboard/agent/env/seed-S`` (see
    :func:`run_cell`; with Ray on several machines, give a folder every node can write).

    Raises:
        ValueError: an unknown executor, ``jobs < 1``, a cell outside the seeding rule (a seed
            above :data:`MAX_SEED`, more than :data:`SEED_STRIDE` slots or episodes), or a finished
            cell of the same key that ran another env id (a named suite entry whose id changed).
        ExecutorError: the executor cannot run (e.g. no reachable Ray).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}.")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}.")
    stream = sys.stderr if stream is None else stream  # at call time: the stderr of now, not of the import
    summary = RunSummary()
    summary.replayed, problems = store.replay()
    if summary.replayed:
        stream.write(f"wrote {summary.replayed} results kept in the journal of {store.path} by an earlier run.\n")
    for problem in problems:
        stream.write(f"{problem}\n")
    done = store.finished_keys()
    finished = store.finished_cells() if done else {}
    pending = []
    for cell in cells:
        key = cell_key(cell)
        if key in done:
            if finished.get(key, (cell.env.id,))[0] != cell.env.id:
                # The key holds the row name, not the id: the stored cell ran another env under that name.
                raise ValueError(
                    f"suite {cell.suite!r}: env {env_name(cell)!r} is now {cell.env.id}, but {store.path} holds its "
                    f'cells run on {finished[key][0]} under that name (same kwargs); give the entry a new name = "..." '
                    "or pass another --db, so that the old results are not taken for the new env's."
                )
            summary.already_done += 1
        else:
            training_seed(cell.seed, cell.num_envs)  # refuse a cell outside the seeding rule before running any
            _check_episodes(cell)
            pending.append(cell)
    summary.to_run = len(pending)
    progress = Progress(summary.to_run, stream)
    if summary.already_done:
        total = summary.already_done + summary.to_run
        stream.write(f"{summary.already_done} of {total} cells are already in {store.path}; skipping them.\n")
        other = _other_versions([cell for cell in cells if cell_key(cell) in done], finished)
        if other:
            stream.write(other + "\n")
    if tensorboard is not None:
        tensorboard = Path(tensorboard).resolve()  # worker processes and Ray tasks may start elsewhere
        replaced = _run_folders_with_events(pending, tensorboard)
        if replaced:
            stream.write(
                f"note: {len(replaced)} cell(s) to run will replace the event files that an earlier run left in their "
                f"TensorBoard folders, e.g. {replaced[0]}; pass another --tensorboard folder to keep them.\n"
            )
    try:
        with closing(_execute(pending, executor, jobs, address, progress, tensorboard)) as outcomes:
            for cell, outcome in outcomes:
                progress.cell(cell, _record(summary, store, cell, outcome))
    except KeyboardInterrupt:
        summary.interrupted = True
        stream.write("\nstopped by Ctrl-C.\n")
    return summary


def _run_folders_with_events(cells: list[Cell], tensorboard: Path) -> list[Path]:
    """The run folders of ``cells`` under ``tensorboard`` that hold event files already (each run replaces them).

    Another suite, or the same one with another database, that runs the same agent on the same env
    name and seed writes the same folder ``agent/env/seed-S``.
    """
    from nlp_agents.logger import EVENT_FILES, run_folder  # here, as in run_cell: the agents load on demand

    folders = (run_folder(tensorboard, cell.agent, env_name(cell), cell.seed) for cell in cells)
    return [folder for folder in folders if next(folder.glob(EVENT_FILES), None) is not None]


def _execute(
    cells: list[Cell],
    executor: str,
    jobs: int,
    address: str | None,
    progress: Progress,
    tensorboard: Path | None = None,
) -> Generator[tuple[Cell, Outcome], None, None]:
    if executor == "ray":
        yield from _execute_ray(cells, address, tensorboard)
    elif jobs == 1:
        for cell in cells:
            yield cell, _run_cell_quietly(cell, progress.steps(cell), tensorboard)
    else:
        yield from _execute_pool(cells, jobs, progress.stream, tensorboard)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _new_pool(jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")
    return concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_ignore_sigint)


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (they may be mid-cell)."""
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def _execute_pool(
    cells: list[Cell], jobs: int, stream: TextIO, tensorboard: Path | None = None
) -> Iterator[tuple[Cell, Outcome]]:
    """Run cells in ``jobs`` worker processes; a dead worker's cells run again, each alone.

    At most ``jobs`` cells are in flight, so when a worker dies (the pool is then broken) the
    cells in flight are the suspects: the pool is replaced and each suspect runs again with
    nothing beside it. A cell that kills its worker twice fails with "worker died".
    """
    waiting = deque(range(len(cells)))
    deaths = [0] * len(cells)
    running: dict[concurrent.futures.Future[Outcome], int] = {}
    pool = _new_pool(jobs)
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                alone = any(deaths[index] for index in running.values()) or (deaths[waiting[0]] and running)
                if alone:
                    break
                index = waiting.popleft()
                try:
                    running[pool.submit(_run_cell_quietly, cells[index], None, tensorboard)] = index
                except BrokenProcessPool:  # a worker died since the last wait: its cell's future says which
                    waiting.appendleft(index)  # this one never started, so it is no suspect
                    break
            if not running:  # broken before anything of this round started
                pool.shutdown(wait=True)
                pool = _new_pool(jobs)
                continue
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            if not any(isinstance(future.exception(), BrokenProcessPool) for future in finished):
                for future in finished:
                    yield cells[running.pop(future)], future.result()
                continue
            concurrent.futures.wait(running)  # the others in flight end with the broken pool
            died = []
            for future, index in list(running.items()):
                del running[future]
                if isinstance(future.exception(), BrokenProcessPool):
                    died.append(index)
                else:
                    yield cells[index], future.result()
            pool.shutdown(wait=True)
            pool = _new_pool(jobs)
            labels = ", ".join(_label(cells[index]) for index in died)
            stream.write(f"a worker process died while running {labels}; running them again, each alone.\n")
            for index in reversed(died):
                deaths[index] += 1
                if deaths[index] >= 2:
                    reason = (
                        "worker died: the process running this cell ended abruptly twice (killed, out of memory, "
                        "or os._exit in the agent or env)"
                    )
                    yield cells[index], ("failed", reason)
                else:
                    waiting.appendleft(index)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def check_ray_address(address: str | None) -> None:
    """Fail fast when Ray cannot be reached at ``address`` (or started here when it is None).

    Raises:
        ExecutorError: the address is malformed, nothing listens there, or this machine's
            loopback interface cannot be used to start a local Ray.
    """
    if address in (None, "local"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
        except OSError as error:
            raise ExecutorError(
                f"--executor ray cannot start a local Ray: the loopback interface 127.0.0.1 is unusable ({error}); "
                "pass --address of a running cluster or use --executor local."
            ) from None
        return
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(
            f"--address {address!r} is not a Ray address; expected HOST:PORT, ray://HOST:PORT, auto or local."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ExecutorError(
            f"--executor ray cannot reach a Ray cluster at {address} ({error}); start one there "
            "(`ray start --head`), fix --address, or leave --address out to start a local Ray."
        ) from None


def _execute_ray(
    cells: list[Cell], address: str | None, tensorboard: Path | None = None
) -> Iterator[tuple[Cell, Outcome]]:
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "--executor ray needs Ray, which is not installed; install it with: pip install 'nlp-envs[ray]'"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        check_ray_address(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as error:  # Ray raises many kinds; each becomes one named line
            raise ExecutorError(
                f"--executor ray could not start or join Ray at {address or 'a new local cluster'}: "
                f"{last_line(str(error)) or type(error).__name__}"
            ) from None
    refs: dict[Any, Cell] = {}
    try:
        remote = ray.remote(_run_cell_remotely)
        refs = {remote.remote(cell, tensorboard): cell for cell in cells}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            yield refs[ready[0]], ray.get(ready[0])
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
