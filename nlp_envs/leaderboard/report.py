"""Leaderboard tables and reports from recorded cells: text, Markdown, model-index JSON, HTML.

Per env: mean and standard deviation of returns and normalised scores per agent, with the speed
of the same runs. Across envs: the interquartile mean (IQM), mean, median and optimality gap of
normalised scores with 95% stratified-bootstrap confidence intervals, and the probability of
improvement between agents (the recommendations of Agarwal et al., 2021).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp_envs.leaderboard import stats
from nlp_envs.leaderboard.store import CellResult

FORMATS = ("table", "markdown", "json", "html")


@dataclass(frozen=True)
class EnvRow:
    """One agent on one env, over its seeds."""

    agent: str
    seeds: int
    mean_return: float
    std_return: float
    mean_score: float
    std_score: float
    steps_per_second: float
    wall_time: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class AgentSummary:
    """One agent across envs: aggregates of the ``(runs, tasks)`` normalised-score matrix."""

    agent: str
    tasks: int
    runs: int
    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    median: float
    optimality_gap: float
    optimality_gap_ci: tuple[float, float]
    steps_per_second: float
    wall_time: float


@dataclass(frozen=True)
class Leaderboard:
    """Everything the reports show."""

    envs: dict[str, list[EnvRow]]
    references: dict[str, tuple[float, float]]
    agents: list[AgentSummary]
    improvement: dict[tuple[str, str], float]
    curves: dict[str, dict[str, np.ndarray]]
    scores: dict[str, np.ndarray]


def score_matrix(results: list[CellResult], agent: str) -> tuple[list[str], np.ndarray]:
    """The ``(runs, tasks)`` normalised scores of ``agent``: envs as tasks, its seeds as runs.

    Where envs have different numbers of seeds, the smallest number is used (lowest seeds first),
    so that every task has the same runs.
    """
    by_env: dict[str, dict[int, float]] = defaultdict(dict)
    for result in results:
        if result.agent == agent:
            by_env[result.env_id][result.seed] = result.normalized_score
    tasks = sorted(by_env)
    if not tasks:
        raise ValueError(f"no results for agent {agent!r}.")
    runs = min(len(seeds) for seeds in by_env.values())
    matrix = np.array([[by_env[env][seed] for seed in sorted(by_env[env])[:runs]] for env in tasks]).T
    return tasks, matrix


def build(results: list[CellResult], *, rng: np.random.Generator, repetitions: int = 2000) -> Leaderboard:
    """Compute every table of the leaderboard from recorded cells."""
    if not results:
        raise ValueError("no results to report; run `nlp-envs bench --suite smoke` first.")
    cells: dict[str, dict[str, list[CellResult]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        cells[result.env_id][result.agent].append(result)
    envs, references, curves = {}, {}, {}
    for env_id in sorted(cells):
        rows = []
        for agent in sorted(cells[env_id]):
            group = cells[env_id][agent]
            returns = np.array([result.mean_return for result in group])
            scores = np.array([result.normalized_score for result in group])
            metric_names = sorted(set().union(*(result.metrics for result in group)))
            rows.append(
                EnvRow(
                    agent=agent,
                    seeds=len(group),
                    mean_return=float(returns.mean()),
                    std_return=float(returns.std()),
                    mean_score=float(scores.mean()),
                    std_score=float(scores.std()),
                    steps_per_second=float(np.mean([result.steps_per_second for result in group])),
                    wall_time=float(np.mean([result.wall_time for result in group])),
                    metrics={
                        name: float(np.mean([result.metrics.get(name, np.nan) for result in group]))
                        for name in metric_names
                    },
                )
            )
        envs[env_id] = sorted(rows, key=lambda row: -row.mean_score)
        first = cells[env_id][next(iter(cells[env_id]))][0]
        references[env_id] = (first.random_return, first.oracle_return)
        curves[env_id] = {agent: _mean_curve(group) for agent, group in cells[env_id].items()}

    agent_names = sorted({result.agent for result in results})
    matrices = {agent: score_matrix(results, agent) for agent in agent_names}
    summaries = []
    for agent in agent_names:
        tasks, matrix = matrices[agent]
        group = [result for result in results if result.agent == agent]
        summaries.append(
            AgentSummary(
                agent=agent,
                tasks=len(tasks),
                runs=matrix.shape[0],
                iqm=stats.interquartile_mean(matrix),
                iqm_ci=_ci(matrix, stats.interquartile_mean, rng, repetitions),
                mean=stats.mean(matrix),
                mean_ci=_ci(matrix, stats.mean, rng, repetitions),
                median=stats.median(matrix),
                optimality_gap=stats.optimality_gap(matrix),
                optimality_gap_ci=_ci(matrix, stats.optimality_gap, rng, repetitions),
                steps_per_second=float(np.mean([result.steps_per_second for result in group])),
                wall_time=float(np.sum([result.wall_time for result in group])),
            )
        )
    summaries.sort(key=lambda summary: -summary.iqm)
    improvement = {}
    for x in agent_names:
        for y in agent_names:
            if x == y:
                continue
            common = sorted(set(matrices[x][0]) & set(matrices[y][0]))
            if common:
                improvement[(x, y)] = stats.probability_of_improvement(
                    _columns(matrices[x], common), _columns(matrices[y], common)
                )
    return Leaderboard(envs, references, summaries, improvement, curves, {a: m for a, (_, m) in matrices.items()})


def _columns(task_matrix: tuple[list[str], np.ndarray], tasks: list[str]) -> np.ndarray:
    names, matrix = task_matrix
    return matrix[:, [names.index(task) for task in tasks]]


def _ci(
    matrix: np.ndarray, aggregate: stats.Aggregate, rng: np.random.Generator, repetitions: int
) -> tuple[float, float]:
    low, high = stats.stratified_bootstrap_ci(matrix, aggregate, rng, repetitions=repetitions)
    return float(low), float(high)


def _with_interval(value: float, interval: tuple[float, float], runs: int) -> str:
    # With one seed per env the bootstrap has nothing to resample: its interval is a point, not
    # a certainty, so none is shown.
    if runs < 2:
        return f"{value:.3f} [1 seed: no CI]"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _mean_curve(group: list[CellResult]) -> np.ndarray:
    """``(points, 2)``: steps and the mean return over seeds at each learning-curve point."""
    length = min(len(result.learning_curve) for result in group)
    if length == 0:
        return np.zeros((0, 2))
    return np.mean([np.asarray(result.learning_curve[:length]) for result in group], axis=0)


def _rows(board: Leaderboard) -> tuple[list[str], list[list[str]], dict[str, tuple[list[str], list[list[str]]]]]:
    """Header and rows of the aggregate table, and of each env's table, as strings."""
    header = [
        "agent",
        "envs",
        "seeds",
        "IQM [95% CI]",
        "mean [95% CI]",
        "median",
        "opt. gap [95% CI]",
        "steps/s (mean of cells)",
        "wall s (all cells)",
    ]
    rows = [
        [
            s.agent,
            str(s.tasks),
            str(s.runs),
            _with_interval(s.iqm, s.iqm_ci, s.runs),
            _with_interval(s.mean, s.mean_ci, s.runs),
            f"{s.median:.3f}",
            _with_interval(s.optimality_gap, s.optimality_gap_ci, s.runs),
            f"{s.steps_per_second:,.0f}",
            f"{s.wall_time:.1f}",
        ]
        for s in board.agents
    ]
    per_env = {}
    for env_id, env_rows in board.envs.items():
        metric_names = sorted(set().union(*(row.metrics for row in env_rows)))
        env_header = [
            "agent",
            "seeds",
            "return (mean ± std)",
            "score (mean ± std)",
            *metric_names,
            "steps/s",
            "wall s / cell",
        ]
        low, high = board.references[env_id]
        table = [["random (ref.)", "", f"{low:.3f}", "0.000", *[""] * len(metric_names), "", ""]]
        table += [["oracle (ref.)", "", f"{high:.3f}", "1.000", *[""] * len(metric_names), "", ""]]
        table += [
            [
                row.agent,
                str(row.seeds),
                f"{row.mean_return:.3f} ± {row.std_return:.3f}",
                f"{row.mean_score:.3f} ± {row.std_score:.3f}",
                *[f"{row.metrics[name]:.3g}" for name in metric_names],
                f"{row.steps_per_second:,.0f}",
                f"{row.wall_time:.1f}",
            ]
            for row in env_rows
        ]
        per_env[env_id] = (env_header, table)
    return header, rows, per_env


def _improvement_rows(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    names = [summary.agent for summary in board.agents]
    rows = [
        [x, *[f"{board.improvement[(x, y)]:.2f}" if (x, y) in board.improvement else "-" for y in names]] for x in names
    ]
    return ["P(row > column)", *names], rows


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_text(board: Leaderboard, *, markdown: bool = False) -> str:
    """The leaderboard as plain-text tables, or as Markdown."""
    table = _markdown_table if markdown else _text_table
    header, rows, per_env = _rows(board)
    title = "## " if markdown else ""
    parts = [f"{title}Across envs: normalised scores (0 = random, 1 = oracle)", table(header, rows)]
    parts += [f"{title}Probability of improvement", table(*_improvement_rows(board))]
    for env_id, (env_header, env_rows) in per_env.items():
        parts += [f"{title}{env_id}", table(env_header, env_rows)]
    return "\n\n".join(parts) + "\n"


def render_json(board: Leaderboard) -> str:
    """Model-index JSON: per agent, one result per env (task, dataset = env id, metrics)."""
    index = []
    for summary in board.agents:
        results = []
        for env_id, rows in board.envs.items():
            for row in rows:
                if row.agent != summary.agent:
                    continue
                metrics = [
                    {
                        "type": "mean_reward",
                        "name": "mean_reward",
                        "value": f"{row.mean_return:.3f} +/- {row.std_return:.3f}",
                    },
                    {"type": "normalized_score", "name": "normalized_score", "value": round(row.mean_score, 4)},
                    *({"type": name, "name": name, "value": round(value, 4)} for name, value in row.metrics.items()),
                ]
                results.append(
                    {
                        "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
                        "dataset": {"type": env_id, "name": env_id},
                        "metrics": metrics,
                    }
                )
        index.append({"name": summary.agent, "results": results})
    return json.dumps(index, indent=2) + "\n"


def render_html(board: Leaderboard) -> str:
    """One self-contained HTML page: the tables and the plots (as embedded PNG images)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "--format html needs matplotlib, which is not installed; install it with: pip install 'nlp-envs[report]'"
        ) from None
    header, rows, per_env = _rows(board)
    sections = ["<h2>Across envs: normalised scores (0 = random, 1 = oracle)</h2>", _html_table(header, rows)]
    sections += [_figure(plt, _plot_intervals(plt, board), "IQM and optimality gap with 95% bootstrap intervals")]
    sections += [_figure(plt, _plot_profiles(plt, board), "Performance profiles")]
    sections += ["<h2>Probability of improvement</h2>", _html_table(*_improvement_rows(board))]
    for env_id, (env_header, env_rows) in per_env.items():
        sections += [f"<h2>{html.escape(env_id)}</h2>", _html_table(env_header, env_rows)]
        sections += [_figure(plt, _plot_curves(plt, board, env_id), f"Learning curves on {env_id}")]
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}"
        "th{background:#f0f0f0}img{max-width:100%}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>nlp-envs leaderboard</title>"
        f"<style>{style}</style></head><body><h1>nlp-envs leaderboard</h1>{''.join(sections)}</body></html>\n"
    )


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(plt: Any, figure: Any, caption: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = html.escape(caption)
    return f"<figure><img alt='{text}' src='data:image/png;base64,{data}'><figcaption>{text}</figcaption></figure>"


def _plot_intervals(plt: Any, board: Leaderboard) -> Any:
    figure, axes = plt.subplots(1, 2, figsize=(10, 0.5 + 0.45 * len(board.agents)), squeeze=False)
    names = [summary.agent for summary in board.agents]
    for axis, (title, point, interval) in zip(
        axes[0], (("IQM", "iqm", "iqm_ci"), ("Optimality gap", "optimality_gap", "optimality_gap_ci")), strict=True
    ):
        values = np.array([getattr(summary, point) for summary in board.agents])
        bounds = np.array([getattr(summary, interval) for summary in board.agents])
        positions = np.arange(len(names))
        axis.barh(positions, bounds[:, 1] - bounds[:, 0], left=bounds[:, 0], height=0.6, alpha=0.5)
        axis.plot(values, positions, "k|", markersize=14)
        axis.set_yticks(positions, names)
        axis.set_title(title)
        axis.set_xlabel("normalised score")
    figure.tight_layout()
    return figure


def _plot_profiles(plt: Any, board: Leaderboard) -> Any:
    figure, axis = plt.subplots(figsize=(6, 4))
    every = np.concatenate([matrix.ravel() for matrix in board.scores.values()])
    thresholds = np.linspace(min(0.0, every.min()), max(1.0, every.max()), 101)
    for agent, matrix in sorted(board.scores.items()):
        axis.plot(thresholds, stats.performance_profile(matrix, thresholds), label=agent)
    axis.set_xlabel("normalised score τ")
    axis.set_ylabel("fraction of runs with score > τ")
    axis.legend(fontsize="small")
    return figure


def _plot_curves(plt: Any, board: Leaderboard, env_id: str) -> Any:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for agent, curve in sorted(board.curves[env_id].items()):
        if len(curve):
            axis.plot(curve[:, 0], curve[:, 1], marker="o", label=agent)
    low, high = board.references[env_id]
    axis.axhline(low, color="grey", linestyle=":", label="random")
    axis.axhline(high, color="black", linestyle="--", label="oracle")
    axis.set_xlabel("training env steps")
    axis.set_ylabel("mean return")
    axis.legend(fontsize="small")
    return figure


def render(board: Leaderboard, fmt: str) -> str:
    """The leaderboard in one of :data:`FORMATS`."""
    if fmt == "table":
        return render_text(board)
    if fmt == "markdown":
        return render_text(board, markdown=True)
    if fmt == "json":
        return render_json(board)
    if fmt == "html":
        return render_html(board)
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}.")
