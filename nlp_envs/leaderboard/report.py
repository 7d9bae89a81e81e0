"""Leaderboard tables and reports from recorded cells: text, Markdown, model-index JSON, HTML.

Per env: mean and standard deviation of returns and normalised scores per agent, with the speed
of the same runs. Across envs: the interquartile mean (IQM), mean, median and optimality gap of
normalised scores with 95% stratified-bootstrap confidence intervals, and the probability of
improvement between agents (the recommendations of Agarwal et al., 2021).

Rows are env variants: cells are grouped by ``env_name`` (the suite entry's name, by default the
env id), so the same env id with two kwargs is two rows. A cell whose normalised score is undefined
(the random and oracle returns coincide) shows as "undefined" in its env's table and is left out of
the across-env aggregates, which count such cells. A cell's notes (e.g. "agent ignores action
masks") are shown next to its agent's scores, and so is a mix of configs (:data:`MIXED_CONFIGS_NOTE`:
seeds of one agent and env that ran under different configs, from a suite edited between runs).
Offline cells (trained from a logged dataset) also show the dataset's behaviour policy as a reference
row beside random and oracle, e.g. ``behaviour (rule, eps 0.3)``, with the return and normalised
score its dataset's metadata records (measured when the dataset was collected, on the evaluation
episodes it names), and their curves count gradient steps.
Every name that comes from users (agents, envs, metrics, notes) is escaped for the format: control
characters are made visible, Markdown and HTML syntax is escaped, plot labels never reach
matplotlib's mathtext, and JSON has ``null`` where a number is undefined, never ``NaN``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp_envs.leaderboard import stats
from nlp_envs.leaderboard.store import CellResult

FORMATS = ("table", "markdown", "json", "html")
UNDEFINED = "undefined"


@dataclass(frozen=True)
class EnvRow:
    """One agent on one env variant, over its seeds (scores over the seeds where they are defined)."""

    agent: str
    seeds: int
    mean_return: float
    std_return: float
    mean_score: float
    std_score: float
    steps_per_second: float
    wall_time: float
    metrics: dict[str, float]
    undefined: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSummary:
    """One agent across envs: aggregates of the ``(runs, tasks)`` normalised-score matrix.

    Cells with an undefined score are left out (``undefined`` counts them); an agent with no defined
    score has ``tasks == runs == 0`` and NaN aggregates.
    """

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
    undefined: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    """The behaviour policy of an offline row's dataset, as its metadata records it.

    Attributes:
        label: e.g. ``"behaviour (rule, eps 0.3)"``.
        mean_return: its mean return on the dataset's evaluation episodes.
        normalized_score: its normalised score there (NaN where undefined).
        dataset: the dataset's id.
        sha256: the sha256 of the dataset's files.
        eval_episodes: how many evaluation episodes, from seed ``eval_seed``.
        eval_seed: the first of them.
    """

    label: str
    mean_return: float
    normalized_score: float
    dataset: str
    sha256: str
    eval_episodes: int
    eval_seed: int


@dataclass(frozen=True)
class Leaderboard:
    """Everything the reports show; ``envs``, ``references``, ``curves`` and ``behaviours`` are keyed by env name.

    ``behaviours`` has an entry for each row of offline cells (see :class:`Behaviour`).
    """

    envs: dict[str, list[EnvRow]]
    references: dict[str, tuple[float, float]]
    agents: list[AgentSummary]
    improvement: dict[tuple[str, str], float]
    curves: dict[str, dict[str, np.ndarray]]
    scores: dict[str, np.ndarray]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)


def behaviour(result: CellResult) -> Behaviour | None:
    """The behaviour reference of an offline cell (from ``config["dataset"]``); None for an online cell."""
    record = result.config.get("dataset")
    if not isinstance(record, dict):
        return None
    score = record.get("behaviour_normalized_score")
    return Behaviour(
        label=str(record.get("behaviour", "behaviour")),
        mean_return=float(record.get("behaviour_return", math.nan)),
        normalized_score=math.nan if score is None else float(score),
        dataset=str(record.get("id", "")),
        sha256=str(record.get("sha256", "")),
        eval_episodes=int(record.get("behaviour_eval_episodes", 0)),
        eval_seed=int(record.get("behaviour_eval_seed", 0)),
    )


def env_name(result: CellResult) -> str:
    """The row label of a cell's env: its suite entry's name (the store fills in the id where none was given)."""
    return result.env_name


def is_defined(score: float | None) -> bool:
    """Whether a normalised score is a number (None and NaN mean undefined)."""
    return score is not None and math.isfinite(score)


def score_matrix(results: list[CellResult], agent: str) -> tuple[list[str], np.ndarray]:
    """The ``(runs, tasks)`` defined normalised scores of ``agent``: env names as tasks, its seeds as runs.

    Cells with an undefined score are left out, and an env where all are undefined is no task.
    Where envs have different numbers of seeds, the smallest number is used (lowest seeds first),
    so that every task has the same runs.

    Raises:
        ValueError: ``agent`` has no cell with a defined score.
    """
    by_env: dict[str, dict[int, float]] = defaultdict(dict)
    for result in results:
        if result.agent == agent and is_defined(result.normalized_score):
            by_env[env_name(result)][result.seed] = float(result.normalized_score)
    tasks = sorted(by_env)
    if not tasks:
        raise ValueError(f"no defined normalised scores for agent {agent!r}.")
    runs = min(len(seeds) for seeds in by_env.values())
    matrix = np.array([[by_env[env][seed] for seed in sorted(by_env[env])[:runs]] for env in tasks]).T
    return tasks, matrix


MIXED_CONFIGS_NOTE = (
    "seeds of different configs: the suite changed between runs; run its bench again to redo the older cells"
)
"""The note of an agent whose cells on one env ran under more than one config (an edited suite, half re-run)."""


def mixed_versions_note(versions: set[str]) -> str:
    """The note of an agent whose cells ran under more than one version of nlp-envs (``versions``)."""
    return (
        f"cells from nlp-envs {', '.join(sorted(versions))}: the package changed between runs; "
        "run the suite again into another --db to compare like with like"
    )


def _notes(group: list[CellResult]) -> tuple[str, ...]:
    notes = {note for result in group for note in result.notes}
    configs: dict[str, set[str]] = defaultdict(set)
    for result in group:
        configs[env_name(result)].add(result.config_hash)
    if any(len(hashes) > 1 for hashes in configs.values()):
        notes.add(MIXED_CONFIGS_NOTE)
    versions = {result.versions.get("nlp-envs", "unknown") for result in group}
    if len(versions) > 1:
        notes.add(mixed_versions_note(versions))
    return tuple(sorted(notes))


def _env_row(agent: str, group: list[CellResult]) -> EnvRow:
    returns = np.array([result.mean_return for result in group])
    scores = np.array([float(result.normalized_score) for result in group if is_defined(result.normalized_score)])
    metric_names = sorted(set().union(*(result.metrics for result in group)))
    return EnvRow(
        agent=agent,
        seeds=len(group),
        mean_return=float(returns.mean()),
        std_return=float(returns.std()),
        mean_score=float(scores.mean()) if scores.size else math.nan,
        std_score=float(scores.std()) if scores.size else math.nan,
        steps_per_second=float(np.mean([result.steps_per_second for result in group])),
        wall_time=float(np.mean([result.wall_time for result in group])),
        # A metric is averaged over the cells that report it.
        metrics={
            name: float(np.mean([result.metrics[name] for result in group if name in result.metrics]))
            for name in metric_names
        },
        undefined=len(group) - int(scores.size),
        notes=_notes(group),
    )


def _best_first(value: float) -> tuple[bool, float]:
    """A sort key: highest first, undefined (NaN) last."""
    return (math.isnan(value), -value if not math.isnan(value) else 0.0)


def build(results: list[CellResult], *, rng: np.random.Generator, repetitions: int = 2000) -> Leaderboard:
    """Compute every table of the leaderboard from recorded cells."""
    if not results:
        raise ValueError("no results to report; run `nlp-envs bench --suite smoke` first.")
    cells: dict[str, dict[str, list[CellResult]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        cells[env_name(result)][result.agent].append(result)
    envs, references, curves, behaviours = {}, {}, {}, {}
    for name in sorted(cells):
        rows = [_env_row(agent, cells[name][agent]) for agent in sorted(cells[name])]
        envs[name] = sorted(rows, key=lambda row: _best_first(row.mean_score))
        first = cells[name][next(iter(cells[name]))][0]
        references[name] = (first.random_return, first.oracle_return)
        curves[name] = {agent: _mean_curve(group) for agent, group in cells[name].items()}
        # The newest offline cell's dataset: with --latest-only reading, all cells of a row share it.
        offline = [
            (result.finished_at, reference)
            for group in cells[name].values()
            for result in group
            if (reference := behaviour(result)) is not None
        ]
        if offline:
            behaviours[name] = max(offline, key=lambda pair: pair[0])[1]

    agent_names = sorted({result.agent for result in results})
    matrices = {}
    for agent in agent_names:
        if any(result.agent == agent and is_defined(result.normalized_score) for result in results):
            matrices[agent] = score_matrix(results, agent)
    summaries = []
    for agent in agent_names:
        group = [result for result in results if result.agent == agent]
        undefined = sum(not is_defined(result.normalized_score) for result in group)
        speed = float(np.mean([result.steps_per_second for result in group]))
        wall = float(np.sum([result.wall_time for result in group]))
        if agent not in matrices:
            nan, no_interval = math.nan, (math.nan, math.nan)
            summaries.append(
                AgentSummary(
                    agent,
                    0,
                    0,
                    nan,
                    no_interval,
                    nan,
                    no_interval,
                    nan,
                    nan,
                    no_interval,
                    speed,
                    wall,
                    undefined,
                    _notes(group),
                )
            )
            continue
        tasks, matrix = matrices[agent]
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
                steps_per_second=speed,
                wall_time=wall,
                undefined=undefined,
                notes=_notes(group),
            )
        )
    summaries.sort(key=lambda summary: _best_first(summary.iqm))
    improvement = {}
    for x in matrices:
        for y in matrices:
            if x == y:
                continue
            common = sorted(set(matrices[x][0]) & set(matrices[y][0]))
            if common:
                improvement[(x, y)] = stats.probability_of_improvement(
                    _columns(matrices[x], common), _columns(matrices[y], common)
                )
    scores = {a: m for a, (_, m) in matrices.items()}
    return Leaderboard(envs, references, summaries, improvement, curves, scores, behaviours)


def _columns(task_matrix: tuple[list[str], np.ndarray], tasks: list[str]) -> np.ndarray:
    names, matrix = task_matrix
    return matrix[:, [names.index(task) for task in tasks]]


def _ci(
    matrix: np.ndarray, aggregate: stats.Aggregate, rng: np.random.Generator, repetitions: int
) -> tuple[float, float]:
    low, high = stats.stratified_bootstrap_ci(matrix, aggregate, rng, repetitions=repetitions)
    return float(low), float(high)


def _number(value: float, spec: str = ".3f") -> str:
    return format(value, spec) if math.isfinite(value) else UNDEFINED


def _with_interval(value: float, interval: tuple[float, float], runs: int) -> str:
    if not math.isfinite(value):
        return UNDEFINED
    # With one seed per env the bootstrap has nothing to resample: its interval is a point, not
    # a certainty, so none is shown.
    if runs < 2:
        return f"{value:.3f} [1 seed: no CI]"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _score_cell(row: EnvRow) -> str:
    if row.undefined == row.seeds:
        return UNDEFINED
    text = f"{row.mean_score:.3f} ± {row.std_score:.3f}"
    return f"{text} ({row.undefined} {UNDEFINED})" if row.undefined else text


def _mean_curve(group: list[CellResult]) -> np.ndarray:
    """``(points, 2)``: steps and the mean return over seeds at each learning-curve point."""
    length = min(len(result.learning_curve) for result in group)
    if length == 0:
        return np.zeros((0, 2))
    return np.mean([np.asarray(result.learning_curve[:length]) for result in group], axis=0)


Escape = Callable[[str], str]


def visible(text: str) -> str:
    """``text`` with control and format characters (newlines, ANSI escapes, bidi overrides) spelled out."""
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char)[0] == "C" else char
        for char in str(text)
    )


_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_PUNCTUATION = set("\\`*[]()!|~$#{}")


def markdown_escape(text: str) -> str:
    """``text`` as literal Markdown inline text (table cells, headings): no HTML, links, emphasis or math.

    HTML's ``< > &`` become entities, Markdown punctuation is backslash-escaped (``|`` included, for
    GFM tables), and ``_`` too except between letters or digits, where CommonMark never reads it as
    emphasis (so ``nlp_envs/NextWord-v0`` stays readable).
    """
    text = visible(text)
    out = []
    for index, char in enumerate(text):
        if char in _MARKDOWN_ENTITIES:
            out.append(_MARKDOWN_ENTITIES[char])
        elif char in _MARKDOWN_PUNCTUATION:
            out.append("\\" + char)
        elif char == "_" and not (
            0 < index < len(text) - 1 and text[index - 1].isalnum() and text[index + 1].isalnum()
        ):
            out.append("\\_")
        else:
            out.append(char)
    return "".join(out)


def html_escape(text: str) -> str:
    """``text`` as HTML text, control characters spelled out."""
    return html.escape(visible(text), quote=True)


def plot_label(text: str) -> str:
    """``text`` for a matplotlib label: ``$`` escaped (no mathtext), no leading ``_`` (legends hide those)."""
    label = visible(text).replace("$", r"\$")
    return " " + label if label.startswith("_") else label


def _rows(
    board: Leaderboard, escape: Escape
) -> tuple[list[str], list[list[str]], dict[str, tuple[list[str], list[list[str]]]]]:
    """Header and rows of the aggregate table, and of each env's table, as strings.

    ``escape`` is applied to every user-supplied string (agent, env and metric names, notes); the
    rest is our own text.
    """
    undefined = any(s.undefined for s in board.agents)
    notes = any(s.notes for s in board.agents)
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
        *(["undefined cells (left out)"] if undefined else []),
        *(["notes"] if notes else []),
    ]
    rows = [
        [
            escape(s.agent),
            str(s.tasks),
            str(s.runs),
            _with_interval(s.iqm, s.iqm_ci, s.runs),
            _with_interval(s.mean, s.mean_ci, s.runs),
            _number(s.median),
            _with_interval(s.optimality_gap, s.optimality_gap_ci, s.runs),
            f"{s.steps_per_second:,.0f}",
            f"{s.wall_time:.1f}",
            *([f"{s.undefined} {UNDEFINED}" if s.undefined else ""] if undefined else []),
            *([escape("; ".join(s.notes))] if notes else []),
        ]
        for s in board.agents
    ]
    per_env = {}
    for name, env_rows in board.envs.items():
        metric_names = sorted(set().union(*(row.metrics for row in env_rows)))
        env_notes = any(row.notes for row in env_rows)
        env_header = [
            "agent",
            "seeds",
            "return (mean ± std)",
            "score (mean ± std)",
            *(escape(metric) for metric in metric_names),
            "steps/s",
            "wall s / cell",
            *(["notes"] if env_notes else []),
        ]
        blanks = [""] * (len(metric_names) + 2 + int(env_notes))
        low, high = board.references[name]
        table = [["random (ref.)", "", _number(low), "0.000", *blanks]]
        table += [["oracle (ref.)", "", _number(high), "1.000", *blanks]]
        if name in board.behaviours:
            reference = board.behaviours[name]
            table += [
                [
                    f"{escape(reference.label)} (ref.)",
                    "",
                    _number(reference.mean_return),
                    _number(reference.normalized_score),
                    *blanks,
                ]
            ]
        table += [
            [
                escape(row.agent),
                str(row.seeds),
                f"{_number(row.mean_return)} ± {_number(row.std_return)}",
                _score_cell(row),
                *[_number(row.metrics[metric], ".3g") if metric in row.metrics else "" for metric in metric_names],
                f"{row.steps_per_second:,.0f}",
                f"{row.wall_time:.1f}",
                *([escape("; ".join(row.notes))] if env_notes else []),
            ]
            for row in env_rows
        ]
        per_env[name] = (env_header, table)
    return header, rows, per_env


def _improvement_rows(board: Leaderboard, escape: Escape) -> tuple[list[str], list[list[str]]]:
    names = [summary.agent for summary in board.agents]
    rows = [
        [
            escape(x),
            *[f"{board.improvement[(x, y)]:.2f}" if (x, y) in board.improvement else "-" for y in names],
        ]
        for x in names
    ]
    return ["P(row > column)", *(escape(name) for name in names)], rows


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
    escape = markdown_escape if markdown else visible
    header, rows, per_env = _rows(board, escape)
    title = "## " if markdown else ""
    parts = [f"{title}Across envs: normalised scores (0 = random, 1 = oracle)", table(header, rows)]
    parts += [f"{title}Probability of improvement", table(*_improvement_rows(board, escape))]
    for name, (env_header, env_rows) in per_env.items():
        parts += [f"{title}{escape(name)}", table(env_header, env_rows)]
    return "\n\n".join(parts) + "\n"


def _json_number(value: float, digits: int = 4) -> float | None:
    """A finite number rounded, or None (JSON ``null``) where it is undefined."""
    return round(value, digits) if math.isfinite(value) else None


def render_json(board: Leaderboard) -> str:
    """Model-index JSON: per agent, one result per env (task, dataset = env name, metrics).

    An undefined figure is ``null``; a result with notes has a ``notes`` list; a result learnt
    offline has a ``behaviour`` entry: the dataset it learnt from (id, sha256) and its behaviour
    policy's figures, the reference the table shows beside random and oracle. ``<``, ``>`` and
    ``&`` in names are written as JSON unicode escapes, so the text can be embedded in an HTML page.
    """
    index = []
    for summary in board.agents:
        results = []
        for name, rows in board.envs.items():
            for row in rows:
                if row.agent != summary.agent:
                    continue
                metrics = [
                    {
                        "type": "mean_reward",
                        "name": "mean_reward",
                        "value": f"{_number(row.mean_return)} +/- {_number(row.std_return)}",
                    },
                    {"type": "normalized_score", "name": "normalized_score", "value": _json_number(row.mean_score)},
                    *(
                        {"type": metric, "name": metric, "value": _json_number(value)}
                        for metric, value in row.metrics.items()
                    ),
                ]
                item: dict[str, Any] = {
                    "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
                    "dataset": {"type": name, "name": name},
                    "metrics": metrics,
                }
                if row.undefined:
                    item["undefined_cells"] = row.undefined
                if row.notes:
                    item["notes"] = list(row.notes)
                if (reference := board.behaviours.get(name)) is not None:
                    item["behaviour"] = {
                        "label": reference.label,
                        "dataset": reference.dataset,
                        "sha256": reference.sha256,
                        "mean_return": _json_number(reference.mean_return),
                        "normalized_score": _json_number(reference.normalized_score),
                        "eval_episodes": reference.eval_episodes,
                        "eval_seed": reference.eval_seed,
                    }
                results.append(item)
        index.append({"name": summary.agent, "results": results})
    text = json.dumps(index, indent=2, allow_nan=False)
    # These characters occur only inside JSON strings, so escaping them everywhere keeps the JSON.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


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
    # Cells are escaped once, by _html_table; here only control characters are spelled out.
    header, rows, per_env = _rows(board, visible)
    sections = ["<h2>Across envs: normalised scores (0 = random, 1 = oracle)</h2>", _html_table(header, rows)]
    if board.scores:
        sections += [_figure(plt, _plot_intervals(plt, board), "IQM and optimality gap with 95% bootstrap intervals")]
        sections += [_figure(plt, _plot_profiles(plt, board), "Performance profiles")]
    sections += ["<h2>Probability of improvement</h2>", _html_table(*_improvement_rows(board, visible))]
    for name, (env_header, env_rows) in per_env.items():
        sections += [f"<h2>{html_escape(name)}</h2>", _html_table(env_header, env_rows)]
        sections += [_figure(plt, _plot_curves(plt, board, name), f"Learning curves on {visible(name)}")]
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
    text = html.escape(caption, quote=True)
    return f"<figure><img alt='{text}' src='data:image/png;base64,{data}'><figcaption>{text}</figcaption></figure>"


def _plot_intervals(plt: Any, board: Leaderboard) -> Any:
    shown = [summary for summary in board.agents if summary.agent in board.scores]
    figure, axes = plt.subplots(1, 2, figsize=(10, 0.5 + 0.45 * len(shown)), squeeze=False)
    names = [plot_label(summary.agent) for summary in shown]
    for axis, (title, point, interval) in zip(
        axes[0], (("IQM", "iqm", "iqm_ci"), ("Optimality gap", "optimality_gap", "optimality_gap_ci")), strict=True
    ):
        values = np.array([getattr(summary, point) for summary in shown])
        bounds = np.array([getattr(summary, interval) for summary in shown])
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
        axis.plot(thresholds, stats.performance_profile(matrix, thresholds), label=plot_label(agent))
    axis.set_xlabel("normalised score τ")
    axis.set_ylabel("fraction of runs with score > τ")
    axis.legend(fontsize="small")
    return figure


def _plot_curves(plt: Any, board: Leaderboard, name: str) -> Any:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for agent, curve in sorted(board.curves[name].items()):
        if len(curve):
            axis.plot(curve[:, 0], curve[:, 1], marker="o", label=plot_label(agent))
    low, high = board.references[name]
    axis.axhline(low, color="grey", linestyle=":", label="random")
    axis.axhline(high, color="black", linestyle="--", label="oracle")
    reference = board.behaviours.get(name)
    if reference is not None and math.isfinite(reference.mean_return):
        axis.axhline(reference.mean_return, color="tab:brown", linestyle="-.", label=plot_label(reference.label))
    axis.set_xlabel("gradient steps" if reference is not None else "training env steps")
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
