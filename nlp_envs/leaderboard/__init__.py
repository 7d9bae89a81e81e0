"""Leaderboards: run suites of (agent, env, seed) cells, record them in SQLite, report with honest statistics."""

from __future__ import annotations

from nlp_envs.leaderboard.report import FORMATS, Leaderboard, build, render
from nlp_envs.leaderboard.runner import EXECUTORS, RunSummary, run_cell, run_cells
from nlp_envs.leaderboard.store import DEFAULT_DB, CellResult, ResultStore, ResultStoreError
from nlp_envs.leaderboard.suites import Cell, Suite, SuiteError, load_suite

__all__ = [
    "DEFAULT_DB",
    "EXECUTORS",
    "FORMATS",
    "Cell",
    "CellResult",
    "Leaderboard",
    "ResultStore",
    "ResultStoreError",
    "RunSummary",
    "Suite",
    "SuiteError",
    "build",
    "load_suite",
    "render",
    "run_cell",
    "run_cells",
]
