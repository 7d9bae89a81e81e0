"""The ``nlp-envs bench`` and ``nlp-envs leaderboard`` sub-commands."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nlp_envs.arguments import positive_int
from nlp_envs.atomic import atomic_write
from nlp_envs.leaderboard.report import FORMATS, build, render
from nlp_envs.leaderboard.runner import (
    EXECUTORS,
    RunSummary,
    cell_key,
    check_ray_address,
    env_name,
    last_line,
    run_cells,
)
from nlp_envs.leaderboard.store import DEFAULT_DB, ResultStore
from nlp_envs.leaderboard.suites import Cell, load_suite

BOOTSTRAP_SEED = 0


def _check_executor_flags(args: argparse.Namespace) -> None:
    """Refuse a flag of one executor given with the other: it would be ignored without a word."""
    if args.executor == "ray" and args.jobs is not None:
        raise ValueError(
            f"--jobs {args.jobs} is for the local executor; with --executor ray, Ray places the cells on its "
            "workers: remove --jobs, or drop --executor ray."
        )
    if args.executor != "ray" and args.address is not None:
        raise ValueError(
            f"--address {args.address} is for --executor ray; the {args.executor} executor runs no Ray cluster: add "
            "--executor ray, or remove --address."
        )


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a suite's unfinished cells, record them, print the suite's leaderboard and a summary.

    Returns:
        0 when every cell is in the database; 1 when a cell failed or waits in the journal;
        130 when interrupted (Ctrl-C).
    """
    _check_executor_flags(args)
    suite = load_suite(args.suite)
    selection = {"agents": args.agents, "envs": args.envs, "seeds": args.seeds, "device": args.device}
    suite.check(agents=args.agents, envs=args.envs, device=args.device)
    cells = suite.cells(**selection)  # lazy, but checks the selection (e.g. --seeds) before anything is written
    if args.tensorboard is not None:
        _check_run_folders(suite.cells(**{**selection, "seeds": 1}), args.tensorboard)
    if args.executor == "ray":
        check_ray_address(args.address)  # before anything is written: fail in seconds, not after a hang
    with ResultStore(args.db) as store:
        print(f"suite {suite.name!r} ({suite.path}): results in {args.db}", file=sys.stderr)
        # After the database is known to be usable: building a named dataset takes a while.
        suite.prepare_datasets(agents=args.agents, envs=args.envs)
        if args.tensorboard is not None:
            print(
                f"TensorBoard scalars in {args.tensorboard}/AGENT/ENV/seed-S, one run folder per cell", file=sys.stderr
            )
        summary = run_cells(
            cells,
            store,
            executor=args.executor,
            jobs=args.jobs or 1,
            address=args.address,
            tensorboard=args.tensorboard,
        )
        wanted = {cell_key(cell) for cell in cells}
        results = [result for result in store.results(suite.name) if result.key in wanted]
        log = _log_failures(store.path, summary)
    try:
        if results and not summary.interrupted:
            print(render(build(results, rng=np.random.default_rng(BOOTSTRAP_SEED)), "table"))
    finally:
        _print_summary(summary, log, debug=bool(getattr(args, "debug", False)))  # also when the table fails
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.kept else 0


def _check_run_folders(cells: Sequence[Cell], tensorboard: Path) -> None:
    """Refuse two (agent, env) rows whose TensorBoard run folders coincide: each run would delete the other's events.

    A folder name keeps letters, digits and ``._+=@-`` only, so names that differ elsewhere (``"lm reward"``
    and ``"lm_reward"``, or two names in another script) would share ``DIR/agent/env``.
    """
    from nlp_agents.logger import run_folder  # here, as in the runner: the agents load on demand

    owners: dict[Path, tuple[str, str]] = {}
    for cell in cells:
        folder = run_folder(tensorboard, cell.agent, env_name(cell), 0).parent
        row = (cell.agent, env_name(cell))
        other = owners.setdefault(folder, row)
        if other != row:
            raise ValueError(
                f"--tensorboard: {other[0]} on {other[1]!r} and {row[0]} on {row[1]!r} would share the run folder "
                f"{folder} (a folder name keeps only letters, digits and ._+=@-), and each run replaces the event "
                "files there; give the env entries names that differ in those characters."
            )


def _log_failures(db: Path, summary: RunSummary) -> Path | None:
    """Append the full reasons (tracebacks) of the failed cells to ``<db>.failures.log``."""
    if not summary.failed:
        return None
    path = db.with_name(db.name + ".failures.log")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = "".join(
        f"{stamp} {cell.suite}: {cell.agent} on {env_name(cell)} seed {cell.seed} failed:\n{reason.rstrip()}\n\n"
        for cell, reason in summary.failed
    )
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        return None
    return path


def _print_summary(summary: RunSummary, log: Path | None, *, debug: bool) -> None:
    """What ran, what failed and why: one line per cell that did not make it into the database."""
    counts = (
        f"{len(summary.finished)} cells run, {summary.already_done} already done, "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed"
    )
    if summary.kept:
        counts += f", {len(summary.kept)} not written (kept for the next run)"
    if summary.duplicates:
        counts += f", {len(summary.duplicates)} written meanwhile by another run"
    if summary.replayed:
        counts += f", {summary.replayed} written from an earlier run's journal"
    print(f"\n{counts}.", file=sys.stderr)
    for cell, reason in summary.skipped:
        print(f"  skipped {cell.agent} on {env_name(cell)} seed {cell.seed}: {last_line(reason)}", file=sys.stderr)
    for cell, reason in summary.failed:
        print(f"  FAILED {cell.agent} on {env_name(cell)} seed {cell.seed}: {last_line(reason)}", file=sys.stderr)
        if debug:
            print(reason.rstrip(), file=sys.stderr)
    if summary.failed and not debug:
        where = f"in {log}" if log else "with --debug"
        print(f"  (full tracebacks {where})", file=sys.stderr)
    for result, reason in summary.kept:
        print(f"  NOT WRITTEN {result.label}: {reason}", file=sys.stderr)
    if summary.interrupted:
        print(
            f"interrupted: {summary.not_run} of {summary.to_run} cells were not run; "
            "run the same command again to resume.",
            file=sys.stderr,
        )


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print (or write) the leaderboard of a results database (opened read-only)."""
    with ResultStore(args.db, readonly=True) as store:
        results = store.results(args.suite, latest_only=True)
        journals = [path for path in (store.journal_path, store.fallback_journal_path) if path.exists()]
    for journal in journals:
        print(
            f"note: results of an earlier run wait in {journal}; the next `nlp-envs bench` writes them.",
            file=sys.stderr,
        )
    if not results:
        where = f"suite {args.suite!r} in " if args.suite else ""
        raise ValueError(f"no finished cells for {where}{args.db}; run `nlp-envs bench` first.")
    suites = sorted({result.suite for result in results})
    if len(suites) > 1:
        # Cells of two suites share agent, env and seed numbers: pooled, one would overwrite the other's seeds.
        raise ValueError(
            f"--db {args.db} holds the cells of {len(suites)} suites ({', '.join(map(repr, suites))}); a leaderboard "
            f"compares the cells of one suite: pass --suite NAME, e.g. --suite {suites[0]}."
        )
    text = render(build(results, rng=np.random.default_rng(BOOTSTRAP_SEED)), args.format)
    if args.output:

        def write(handle: BinaryIO) -> None:
            handle.write(text.encode("utf-8"))

        try:
            atomic_write(args.output, write)
        except OSError as error:
            raise ValueError(f"--output {args.output}: cannot write it ({error.strerror or error}).") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``leaderboard`` to the ``nlp-envs`` parser."""
    bench = commands.add_parser("bench", help="run a leaderboard suite (resumes where it stopped)")
    bench.add_argument("--suite", required=True, help="suite name (smoke, default, full) or a .toml path")
    bench.add_argument("--agents", nargs="+", help="only these agents of the suite")
    bench.add_argument("--envs", nargs="+", help="only these envs of the suite (names or ids)")
    bench.add_argument("--seeds", type=int, help="number of seeds (default: the suite's)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--executor", choices=EXECUTORS, default="local")
    bench.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local Ray)")
    bench.add_argument("--jobs", type=positive_int, help="worker processes for the local executor (default: 1)")
    bench.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    bench.add_argument(
        "--tensorboard",
        metavar="DIR",
        type=Path,
        default=None,
        help="write each cell's TensorBoard scalars to DIR/agent/env/seed-S (needs nlp-envs[tensorboard])",
    )
    bench.set_defaults(handler=cmd_bench)

    board = commands.add_parser("leaderboard", help="show the leaderboard of a results database")
    board.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    board.add_argument("--suite", help="only this suite's cells (needed when the database holds several suites)")
    board.add_argument("--format", choices=FORMATS, default="table")
    board.add_argument("--output", help="write to this file instead of standard output")
    board.set_defaults(handler=cmd_leaderboard)
