"""Reports: env variants as rows, undefined scores, notes, and hostile names escaped in every format."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from nlp_envs.leaderboard import CellResult, build, render
from nlp_envs.leaderboard.report import markdown_escape, plot_label, visible
from tests.test_leaderboard import result


def cell(**changes: object) -> CellResult:
    """A stored cell with one learning-curve point (for the HTML plot), changed by ``changes``."""
    return result(**{"learning_curve": [[10.0, 1.0]], **changes})


def board(results: list[CellResult]):
    return build(results, rng=np.random.default_rng(0), repetitions=50)


def test_variants_of_one_env_id_are_distinct_rows_in_every_format() -> None:
    results = [
        cell(env_id="nlp_envs/NextWord-v0", agent=agent, seed=seed, normalized_score=score, env_name=name)
        for name, score in (("", 0.2), ("NextWord reference", 0.8))
        for agent in ("x", "y")
        for seed in (0, 1)
    ]
    leaderboard = board(results)
    assert set(leaderboard.envs) == {"nlp_envs/NextWord-v0", "NextWord reference"}
    assert [row.mean_score for row in leaderboard.envs["NextWord reference"]] == [0.8, 0.8]
    assert all(summary.tasks == 2 for summary in leaderboard.agents)
    for fmt in ("table", "markdown"):
        text = render(leaderboard, fmt)
        assert "nlp_envs/NextWord-v0" in text and "NextWord reference" in text
    datasets = [item["dataset"]["name"] for item in json.loads(render(leaderboard, "json"))[0]["results"]]
    assert sorted(datasets) == ["NextWord reference", "nlp_envs/NextWord-v0"]


def test_a_variant_name_labels_the_row_and_a_cell_without_one_uses_the_id() -> None:
    results = [cell(env_id="e", env_name="e (reference)"), cell(env_id="e", agent="b")]
    assert set(board(results).envs) == {"e", "e (reference)"}


@pytest.mark.parametrize("undefined", [None, math.nan])
def test_undefined_scores_show_as_undefined_and_are_counted_out_of_the_aggregates(undefined: float | None) -> None:
    results = [
        cell(env_id="e1", seed=0, normalized_score=0.2),
        cell(env_id="e1", seed=1, normalized_score=0.4),
        cell(env_id="e2", seed=0, normalized_score=undefined),
        cell(env_id="e2", seed=1, normalized_score=undefined),
        cell(env_id="e1", agent="b", seed=0, normalized_score=undefined),
        cell(env_id="e3", agent="b", seed=0, normalized_score=0.9),
        cell(env_id="e3", agent="b", seed=1, normalized_score=undefined),
    ]
    leaderboard = board(results)
    summaries = {summary.agent: summary for summary in leaderboard.agents}
    assert summaries["a"].tasks == 1 and summaries["a"].runs == 2 and summaries["a"].undefined == 2
    assert summaries["a"].mean == pytest.approx(0.3)
    assert summaries["b"].tasks == 1 and summaries["b"].undefined == 2 and summaries["b"].mean == pytest.approx(0.9)
    text = render(leaderboard, "table")
    assert "2 undefined" in text and "undefined cells (left out)" in text
    e2 = text.split("\ne2\n")[1].split("\n\n")[0]
    assert re.search(r"^a\s+2\s+1\.000 ± 0\.000\s+undefined\s", e2, re.MULTILINE)
    e3 = text.split("\ne3\n")[1].split("\n\n")[0]
    assert "0.900 ± 0.000 (1 undefined)" in e3
    assert "nan" not in text.lower()
    index = json.loads(render(leaderboard, "json"))
    e2_result = next(item for item in index if item["name"] == "a")["results"]
    scores = {item["dataset"]["name"]: item["metrics"][1]["value"] for item in e2_result}
    assert scores == {"e1": 0.3, "e2": None}


def test_an_agent_with_no_defined_score_is_listed_as_undefined() -> None:
    results = [cell(agent="a", normalized_score=0.5), cell(agent="b", normalized_score=None)]
    leaderboard = board(results)
    (b,) = [summary for summary in leaderboard.agents if summary.agent == "b"]
    assert b.tasks == 0 and math.isnan(b.iqm) and leaderboard.agents[-1].agent == "b"
    row = next(line for line in render(leaderboard, "table").splitlines() if line.startswith("b "))
    assert row.split()[3] == "undefined"
    json.loads(render(leaderboard, "json"))
    pytest.importorskip("matplotlib")
    assert "undefined" in render(leaderboard, "html")


def test_notes_are_shown_next_to_the_agent_in_every_format() -> None:
    note = "agent ignores action masks"
    results = [cell(agent="qrdqn", notes=[note]), cell(agent="qrdqn", seed=1, notes=[note]), cell(agent="dqn")]
    leaderboard = board(results)
    for fmt in ("table", "markdown"):
        text = render(leaderboard, fmt)
        with_note = [line for line in text.splitlines() if note in line]
        # The across-env row and the env's row of qrdqn, nothing else.
        assert len(with_note) == 2 and all(line.lstrip("| ").startswith("qrdqn ") for line in with_note)
    (item,) = next(entry for entry in json.loads(render(leaderboard, "json")) if entry["name"] == "qrdqn")["results"]
    assert item["notes"] == [note]
    pytest.importorskip("matplotlib")
    assert render(leaderboard, "html").count(note) == 2


HOSTILE = {
    "agent": "<script>alert(1)</script>|x",
    "env_name": "<img src=x onerror=alert(2)>|[click](javascript:alert(3))",
    "note": "a$\\frac{1}{$b **bold** <b>",
    "metric": "succ|ess<i>",
}


@pytest.fixture
def hostile_board():
    results = [
        cell(
            agent=HOSTILE["agent"],
            env_id="e",
            env_name=HOSTILE["env_name"],
            seed=seed,
            notes=[HOSTILE["note"]],
            metrics={HOSTILE["metric"]: 0.5},
            normalized_score=[0.5, math.nan][seed],
        )
        for seed in (0, 1)
    ]
    results.append(cell(agent="_hidden$x$", env_id="e\x1b[31mred\nline", seed=0))
    return board(results)


def test_markdown_escapes_every_user_string(hostile_board) -> None:
    text = render(hostile_board, "markdown")
    for raw in ("<script", "<img", "<b>", "<i>", "](javascript", "**bold**"):
        assert raw not in text
    assert "\x1b" not in text and "e\\\\x1b\\[31mred\\\\nline" in text
    for line in text.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)
            assert len(cells) - 2 == line.count("|") - line.count("\\|") - 1
    tables = [block for block in text.split("\n\n") if block.startswith("|")]
    for table in tables:
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(widths) == 1, table


def test_text_table_spells_out_control_characters(hostile_board) -> None:
    text = render(hostile_board, "table")
    assert "\x1b" not in text and "e\\x1b[31mred\\nline" in text


def test_json_has_no_nan_and_no_raw_markup(hostile_board) -> None:
    text = render(hostile_board, "json")
    assert "NaN" not in text and "<" not in text and ">" not in text
    index = json.loads(text)
    json.dumps(index, allow_nan=False)
    names = {entry["name"] for entry in index}
    assert HOSTILE["agent"] in names
    item = next(entry for entry in index if entry["name"] == HOSTILE["agent"])["results"][0]
    assert item["dataset"]["name"] == HOSTILE["env_name"] and item["notes"] == [HOSTILE["note"]]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_names_and_never_runs_them_through_mathtext(hostile_board) -> None:
    pytest.importorskip("matplotlib")
    page = render(hostile_board, "html")
    parser = _Collector()
    parser.feed(page)
    assert set(parser.tags) <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "figure",
        "img",
        "figcaption",
    }
    shown = "".join(parser.text)
    assert HOSTILE["agent"] in shown and HOSTILE["note"] in shown and HOSTILE["env_name"] in shown


def test_escape_helpers() -> None:
    assert markdown_escape("nlp_envs/NextWord-v0") == "nlp_envs/NextWord-v0"
    assert markdown_escape("_x_ *y* `z` a|b <c> & $d$") == "\\_x\\_ \\*y\\* \\`z\\` a\\|b &lt;c&gt; &amp; \\$d\\$"
    assert visible("a\nb\u202ec") == "a\\nb\\u202ec"
    assert plot_label("_a$b$") == r" _a\$b\$"


def test_the_latest_cells_of_a_database_keep_both_variants(tmp_path) -> None:
    from nlp_envs.leaderboard import ResultStore

    with ResultStore(tmp_path / "r.sqlite") as store:
        store.add(cell(env_id="e", config_hash="lm", normalized_score=0.2))
        store.add(cell(env_id="e", env_name="e ref", config_hash="ref", normalized_score=0.8))
        latest = store.results(latest_only=True)
    assert set(board(latest).envs) == {"e", "e ref"}
