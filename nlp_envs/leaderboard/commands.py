"""The ``nlp-envs bench`` and ``nlp-envs leaderboard`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nlp_envs.leaderboard.report import FORMATS, build, render
from nlp_envs.leaderboard.runner import EXECUTORS, run_cells
from nlp_envs.leaderboard.store import DEFAULT_DB, ResultStore
from nlp_envs.leaderboard.suites import load_suite

BOOTSTRAP_SEED = 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a suite's unfinished cells, record them, and print the suite's leaderboard."""
    suite = load_suite(args.suite)
    suite.check(agents=args.agents, envs=args.envs, device=args.device)
    cells = suite.cells(agents=args.agents, envs=args.envs, seeds=args.seeds, device=args.device)
    print(f"suite {suite.name!r} ({suite.path}): {len(cells)} cells, results in {args.db}", file=sys.stderr)
    with ResultStore(args.db) as store:
        summary = run_cells(cells, store, executor=args.executor, jobs=args.jobs, address=args.address)
        results = [result for result in store.results(suite.name) if result.key in {cell.key for cell in cells}]
    print(
        f"\n{len(summary.finished)} cells run, {summary.already_done} already done, "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed.",
        file=sys.stderr,
    )
    for cell, reason in summary.skipped:
        print(f"  skipped {cell.agent} on {cell.env.id}: {reason.strip().splitlines()[-1]}", file=sys.stderr)
    for cell, reason in summary.failed:
        print(f"  FAILED {cell.agent} on {cell.env.id} seed {cell.seed}:\n{reason}", file=sys.stderr)
    if results:
        print(render(build(results, rng=np.random.default_rng(BOOTSTRAP_SEED)), "table"))
    return 1 if summary.failed else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print (or write) the leaderboard of a results database."""
    if not Path(args.db).exists():
        raise ValueError(f"no results database at {args.db}; run `nlp-envs bench --suite smoke` first or pass --db.")
    with ResultStore(args.db) as store:
        results = store.results(args.suite, latest_only=True)
    if not results:
        where = f"suite {args.suite!r} in " if args.suite else ""
        raise ValueError(f"no finished cells for {where}{args.db}; run `nlp-envs bench` first.")
    text = render(build(results, rng=np.random.default_rng(BOOTSTRAP_SEED)), args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
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
    bench.add_argument("--jobs", type=int, default=1, help="worker processes for the local executor")
    bench.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    bench.set_defaults(handler=cmd_bench)

    board = commands.add_parser("leaderboard", help="show the leaderboard of a results database")
    board.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    board.add_argument("--suite", help="only this suite's cells")
    board.add_argument("--format", choices=FORMATS, default="table")
    board.add_argument("--output", help="write to this file instead of standard output")
    board.set_defaults(handler=cmd_leaderboard)
