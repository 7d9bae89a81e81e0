"""Suites: data files in a cell's identity, env variants, bounds, lazy cells, up-front checks, shipped suites."""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp_envs.leaderboard.suites import DATA_FILE_KWARGS, LIMITS, Cells, SuiteError, load_suite

SUITE_WITH_FILE = """
name = "files"
seeds = 1
[[envs]]
id = "nlp_envs/TextClassification-v0"
kwargs = { dataset = "data/docs.csv", split = "train" }
eval_kwargs = { split = "test" }
[agents.random]
"""


def write_suite(folder: Path, text: str, name: str = "suite.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def suite_with_file(tmp_path: Path) -> Path:
    data = tmp_path / "project" / "data" / "docs.csv"
    data.parent.mkdir(parents=True)
    data.write_text("text,label\ngood film,pos\nbad film,neg\n", encoding="utf-8")
    return write_suite(tmp_path / "project", SUITE_WITH_FILE)


def test_a_relative_data_file_is_read_from_the_suite_folder_whatever_the_working_directory(
    suite_with_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = str((suite_with_file.parent / "data" / "docs.csv").resolve())
    monkeypatch.chdir(suite_with_file.parent)
    (here,) = load_suite("suite.toml").cells()
    elsewhere_folder = tmp_path / "elsewhere"
    elsewhere_folder.mkdir()
    monkeypatch.chdir(elsewhere_folder)
    (there,) = load_suite(str(suite_with_file)).cells()
    assert here.env.kwargs["dataset"] == there.env.kwargs["dataset"] == expected
    assert here.env.eval_kwargs["dataset"] == expected and here.env.eval_kwargs["split"] == "test"
    assert here.key == there.key
    assert set(here.config["data_hashes"]) == {"dataset"} and len(here.config["data_hashes"]["dataset"]) == 64


def test_an_edited_data_file_is_a_new_cell_and_a_moved_one_the_same(suite_with_file: Path, tmp_path: Path) -> None:
    (before,) = load_suite(str(suite_with_file)).cells()
    data = suite_with_file.parent / "data" / "docs.csv"
    data.write_text("text,label\ngood film,pos\nawful film,neg\n", encoding="utf-8")
    (after,) = load_suite(str(suite_with_file)).cells()
    assert after.key != before.key
    assert after.config["data_hashes"] != before.config["data_hashes"]
    moved = tmp_path / "moved"
    (moved / "data").mkdir(parents=True)
    (moved / "data" / "docs.csv").write_bytes(data.read_bytes())
    (copy,) = load_suite(str(write_suite(moved, SUITE_WITH_FILE))).cells()
    assert copy.env.kwargs["dataset"] != after.env.kwargs["dataset"] and copy.key == after.key


def test_builtin_data_names_are_not_files_and_keep_their_keys(tmp_path: Path) -> None:
    suite = load_suite(
        str(
            write_suite(
                tmp_path,
                '[[envs]]\nid = "nlp_envs/Sentiment-v0"\nkwargs = { dataset = "drugreview" }\n[agents.random]\n',
            )
        )
    )
    (cell, *_) = suite.cells()
    assert cell.env.kwargs == {"dataset": "drugreview"} and "data_hashes" not in cell.config
    assert "env_name" not in cell.config


def test_evaluation_on_another_file_is_hashed_on_its_own(tmp_path: Path) -> None:
    for name in ("train.csv", "test.csv"):
        (tmp_path / name).write_text(f"text,label\n{name},a\n", encoding="utf-8")
    suite = load_suite(
        str(
            write_suite(
                tmp_path,
                '[[envs]]\nid = "nlp_envs/TextClassification-v0"\nkwargs = { dataset = "train.csv" }\n'
                'eval_kwargs = { dataset = "test.csv" }\n[agents.random]\n',
            )
        )
    )
    assert set(suite.envs[0].data_hashes) == {"dataset", "eval_kwargs.dataset"}
    assert suite.envs[0].eval_kwargs["dataset"] == str(tmp_path.resolve() / "test.csv")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ('{ dataset = "missing.csv" }', "does not exist"),
        ('{ corpus = "folder" }', "is not a file"),
        ('{ ontology = "chaterbot" }', "does not exist"),
    ],
)
def test_a_missing_data_file_is_one_line_naming_suite_entry_and_path(tmp_path: Path, kwargs: str, problem: str) -> None:
    (tmp_path / "folder").mkdir()
    path = write_suite(tmp_path, f'[[envs]]\nid = "nlp_envs/Dialogue-v0"\nkwargs = {kwargs}\n[agents.random]\n')
    with pytest.raises(SuiteError) as error:
        load_suite(str(path))
    message = str(error.value)
    assert "\n" not in message and str(path.resolve()) in message and problem in message
    assert "envs entry 1 (nlp_envs/Dialogue-v0): kwargs." in message and str(tmp_path.resolve()) in message


VARIANTS = """
seeds = 2
[[envs]]
id = "nlp_envs/NextWordEasy-v0"
kwargs = {{ reward = "lm" }}
{first}
[[envs]]
id = "nlp_envs/NextWordEasy-v0"
kwargs = {{ reward = "reference" }}
{second}
[agents.random]
"""


def test_env_variants_need_distinct_names(tmp_path: Path) -> None:
    unnamed = write_suite(tmp_path, VARIANTS.format(first="", second=""))
    with pytest.raises(
        SuiteError, match="entries 1 and 2 both have id 'nlp_envs/NextWordEasy-v0' and no distinct name"
    ):
        load_suite(str(unnamed))
    same = write_suite(tmp_path, VARIANTS.format(first='name = "x"', second='name = "x"'))
    with pytest.raises(SuiteError, match="entries 1 and 2 are both named 'x'"):
        load_suite(str(same))
    clash = write_suite(tmp_path, VARIANTS.format(first="", second='name = "nlp_envs/NextWordEasy-v0"'))
    with pytest.raises(SuiteError, match="both have id"):
        load_suite(str(clash))


def test_named_variants_are_distinct_cells_selectable_by_name_or_id(tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path, VARIANTS.format(first="", second='name = "NextWord ref"'))))
    assert [entry.name for entry in suite.envs] == ["nlp_envs/NextWordEasy-v0", "NextWord ref"]
    cells = list(suite.cells())
    assert len(cells) == 4 and len({cell.key for cell in cells}) == 4
    assert cells[2].config["env_name"] == "NextWord ref" and "env_name" not in cells[0].config
    assert {cell.env.name for cell in suite.cells(envs=["NextWord ref"])} == {"NextWord ref"}
    assert len(suite.cells(envs=["nlp_envs/NextWordEasy-v0"])) == 4
    with pytest.raises(SuiteError, match="no env named 'nope'"):
        suite.cells(envs=["nope"])


BASE = '[[envs]]\nid = "nlp_envs/DialogueEasy-v0"\n[agents.random]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"seeds = 1_000_000_000\n{BASE}", "seeds = 1,000,000,000 is over the limit of 10,000"),
        (f"seeds = 1e9\n{BASE}", "seeds must be a positive integer, got 1000000000.0"),
        (f"num_envs = 100000\n{BASE}", "num_envs = 100,000 is over the limit of 65,536"),
        (f"eval_episodes = 10_000_000\n{BASE}", "eval_episodes = 10,000,000 is over the limit"),
        (f"curve_points = 5000\n{BASE}", "curve_points = 5,000 is over the limit"),
        (f"curve_episodes = true\n{BASE}", "curve_episodes must be a positive integer, got True"),
        (f"steps = 100_000_000_000\n{BASE}", "steps = 100,000,000,000 is over the limit"),
        (
            '[[envs]]\nid = "nlp_envs/DialogueEasy-v0"\nsteps = 0\n[agents.random]\n',
            "entry 1 (nlp_envs/DialogueEasy-v0): steps",
        ),
        ("[[envs]]\nid = 3\n[agents.random]\n", "envs entry 1: id must be a non-empty string, got 3"),
        ('[[envs]]\nid = "x"\nname = ""\n[agents.random]\n', "name must be a non-empty string"),
        ('[[envs]]\nid = "x"\nkwargs = "split=train"\n[agents.random]\n', "kwargs must be a table"),
        ('[[envs]]\nid = "x"\neval_kwargs = [1]\n[agents.random]\n', "eval_kwargs must be a table"),
        ('[[envs]]\nid = "x"\n[agents]\nrandom = 3\n', "agents.random must be a table of hyper-parameters"),
        (f"name = 5\n{BASE}", "name must be a string, got 5"),
        (f"description = [1]\n{BASE}", "description must be a string"),
    ],
)
def test_malformed_and_oversized_fields_are_named_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_suite(str(write_suite(tmp_path, text)))
    assert "\n" not in str(error.value)


def test_cells_are_lazy_and_bounded(tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path, f"seeds = {LIMITS['seeds']}\n{BASE}")))
    cells = suite.cells()
    assert isinstance(cells, Cells) and len(cells) == LIMITS["seeds"]
    assert cells[-1].seed == LIMITS["seeds"] - 1 and [cell.seed for cell in cells[2:4]] == [2, 3]
    assert [cell.seed for cell in cells][:3] == [0, 1, 2]
    with pytest.raises(IndexError):
        cells[len(cells)]
    with pytest.raises(SuiteError, match="--seeds must be an integer from 1 to 10,000, got 1000000000"):
        suite.cells(seeds=10**9)


def test_cells_order_matches_indexing(tmp_path: Path) -> None:
    text = VARIANTS.format(first="", second='name = "b"').replace("[agents.random]", "[agents.random]\n[agents.qtable]")
    cells = load_suite(str(write_suite(tmp_path, text))).cells(seeds=3)
    assert list(cells) == [cells[index] for index in range(len(cells))]
    assert [(cell.env.name, cell.agent, cell.seed) for cell in cells][:4] == [
        ("nlp_envs/NextWordEasy-v0", "random", 0),
        ("nlp_envs/NextWordEasy-v0", "random", 1),
        ("nlp_envs/NextWordEasy-v0", "random", 2),
        ("nlp_envs/NextWordEasy-v0", "qtable", 0),
    ]


@pytest.mark.parametrize(
    ("text", "device", "message"),
    [
        (
            '[[envs]]\nid = "nlp_envs/DialogueEasy-v0"\n[agents.nosuchagent]\n',
            "cpu",
            r"\[agents.nosuchagent\]: unknown agent",
        ),
        (
            '[[envs]]\nid = "nlp_envs/NoSuchEnv-v0"\n[agents.random]\n',
            "cpu",
            "id 'nlp_envs/NoSuchEnv-v0', which is not a registered env",
        ),
        (BASE, "gpu7", "--device: device='gpu7' is not a device"),
    ],
)
def test_check_names_a_bad_agent_env_or_device_once(tmp_path: Path, text: str, device: str, message: str) -> None:
    suite = load_suite(str(write_suite(tmp_path, text)))
    with pytest.raises(SuiteError, match=message) as error:
        suite.check(device=device)
    assert "\n" not in str(error.value) and "suite.toml" in str(error.value)


def test_check_accepts_the_shipped_suites_and_looks_only_at_the_selection(tmp_path: Path) -> None:
    for name in ("smoke", "default", "full"):
        load_suite(name).check(device="cpu")
    text = BASE.replace("[agents.random]", "[agents.random]\n[agents.nosuchagent]")
    load_suite(str(write_suite(tmp_path, text))).check(agents=["random"], device="cpu")


def test_bench_refuses_a_bad_agent_in_one_line_before_running(tmp_path: Path) -> None:
    path = write_suite(tmp_path, '[[envs]]\nid = "nlp_envs/DialogueEasy-v0"\n[agents.nosuchagent]\n')
    result = subprocess.run(
        [sys.executable, "-m", "nlp_envs.cli", "bench", "--suite", str(path), "--db", str(tmp_path / "r.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "unknown agent 'nosuchagent'" in result.stderr
    assert not (tmp_path / "r.sqlite").exists()


def test_named_suites_load_from_the_package_outside_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = importlib.resources.files("nlp_envs.leaderboard") / "builtin_suites"
    names = {item.name for item in shipped.iterdir() if item.name.endswith(".toml")}
    assert {"smoke.toml", "default.toml", "full.toml"} <= names
    monkeypatch.chdir(tmp_path)
    assert load_suite("smoke").path == Path(str(shipped / "smoke.toml")).resolve()
    own = write_suite(tmp_path / "benchmarks" / "suites", BASE, "mine.toml")
    assert load_suite("mine").path == own.resolve()


def test_the_wheel_ships_the_suites(tmp_path: Path) -> None:
    # Built from a copy, so that no build/ folder of the checkout (stale files included) takes part.
    root, source = Path(__file__).resolve().parents[1], tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("nlp_envs", "agents"):
        shutil.copytree(root / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
        env=dict(os.environ, PIP_NO_INDEX="1"),
    )
    (wheel,) = tmp_path.glob("nlp_envs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in ("smoke", "default", "full"):
        assert f"nlp_envs/leaderboard/builtin_suites/{name}.toml" in names


def toml_value(value: object) -> str:
    """A TOML literal of ``value`` (bool, int, float, str, list or dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_value(key)} = {toml_value(item)}" for key, item in value.items()) + "}"


SCALARS = st.one_of(
    st.integers(min_value=1, max_value=50),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["data.csv", "/nonexistent/x.jsonl", ".", "chitchat", "bank", "nlp_envs/DialogueEasy-v0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
SUITE_FIELDS = sorted(LIMITS) + ["name", "description"]
ENV_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["nlp_envs/DialogueEasy-v0", "nlp_envs/Sentiment-v0"]) | VALUES,
        "name": VALUES,
        "kwargs": st.dictionaries(st.sampled_from(DATA_FILE_KWARGS + ("split",)), VALUES, max_size=2) | VALUES,
        "eval_kwargs": VALUES,
        "steps": VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    suite_fields=st.dictionaries(st.sampled_from(SUITE_FIELDS), VALUES, max_size=3),
    env_fields=st.lists(ENV_ENTRY, min_size=1, max_size=2),
    agent=st.one_of(st.just({}), VALUES),
    seeds=st.one_of(st.none(), st.integers(min_value=-5, max_value=2**40)),
)
def test_any_suite_fields_give_a_suite_or_a_named_error(
    tmp_path: Path, suite_fields: dict, env_fields: list, agent: object, seeds: int | None
) -> None:
    lines = [f"{key} = {toml_value(value)}" for key, value in suite_fields.items()]
    for entry in env_fields:
        lines += ["[[envs]]", *(f"{key} = {toml_value(value)}" for key, value in entry.items())]
    lines += [f"[agents]\nrandom = {toml_value(agent)}"]
    path = write_suite(tmp_path, "\n".join(lines) + "\n")
    try:
        suite = load_suite(str(path))
        cells = suite.cells(seeds=seeds)
        assert len(cells) <= LIMITS["seeds"] * len(suite.envs)
        if len(cells):
            assert cells[0].key and cells[len(cells) - 1].config_hash
    except SuiteError as error:
        assert "\n" not in str(error) and str(error)
