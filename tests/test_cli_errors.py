"""The error table of the command line: every bad input is one line on stderr, never a traceback.

Each row is (arguments, a substring the error line must contain). The rule checked for every row:
exit code 2, exactly one non-empty line on standard error, starting ``nlp-envs: error:`` and naming
the input, no traceback; the same arguments with ``--debug`` show the traceback. ``@tmp`` in an
argument is a fresh folder, ``@suite`` a tiny valid suite file and ``@file`` a plain text file.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
from nlp_envs import cli
from nlp_envs.cli import main
from nlp_envs.progress import StepBar

EASY = "nlp_envs/NextWordEasy-v0"
TRAIN = ["train", "--agent", "qtable", "--env", EASY, "--steps", "100", "--eval-episodes", "2"]
COLLECT = ["collect", "nlp_envs/DialogueEasy-v0", "--policy", "rule", "--epsilon", "0.3", "--seed", "300000"]
COLLECT += ["--episodes", "4"]

TINY_SUITE = """
name = "tiny"
seeds = 1
steps = 64
num_envs = 2
eval_episodes = 2
curve_points = 1
curve_episodes = 2

[[envs]]
id = "nlp_envs/NextWordEasy-v0"
{env_extra}

[agents.{agent}]
{agent_extra}
"""


def suite_text(agent: str = "random", agent_extra: str = "", env_extra: str = "") -> str:
    """A one-cell suite that trains in well under a second."""
    return TINY_SUITE.format(agent=agent, agent_extra=agent_extra, env_extra=env_extra)


# (arguments, what the line must name); extra suite files are written by the `paths` fixture.
CASES = [
    # envs and agents
    pytest.param(["envs", "--verbose"], "--verbose", id="envs-unknown-flag"),
    pytest.param(["agents", "extra"], "extra", id="agents-extra-argument"),
    pytest.param(["frobnicate"], "frobnicate", id="unknown-subcommand"),
    # play
    pytest.param(["play", "nlp_envs/Nope-v0"], "Nope", id="play-unknown-env"),
    pytest.param(["play", EASY, "--policy", "genius"], "genius", id="play-unknown-policy"),
    pytest.param(["play", EASY, "--env-kwargs", '{"bogus": 1}'], "bogus", id="play-unknown-env-kwarg"),
    pytest.param(["play", EASY, "--env-kwargs", "{bad"], "--env-kwargs", id="play-malformed-env-kwargs"),
    pytest.param(["play", EASY, "--seed", "-3"], "--seed", id="play-negative-seed"),
    # train: arguments
    pytest.param(["train", "--agent", "qtable"], "--env", id="train-missing-required"),
    pytest.param([*TRAIN, "--steps", "0"], "--steps", id="train-zero-steps"),
    pytest.param([*TRAIN, "--steps", "-5"], "--steps", id="train-negative-steps"),
    pytest.param([*TRAIN, "--steps", "1e6"], "--steps", id="train-float-steps"),
    pytest.param([*TRAIN, "--steps", str(10**23)], "--steps", id="train-endless-steps"),  # ran for ever
    pytest.param([*TRAIN, "--num-envs", "0"], "--num-envs", id="train-zero-envs"),
    pytest.param([*TRAIN, "--seed", "-1"], "--seed", id="train-negative-seed"),
    pytest.param([*TRAIN, "--seed", str(2**64)], "--seed", id="train-huge-seed"),
    pytest.param([*TRAIN, "--eval-seed", "x"], "--eval-seed", id="train-non-integer-eval-seed"),
    pytest.param([*TRAIN, "--hyperparams", "{bad"], "--hyperparams", id="train-malformed-hyperparams"),
    pytest.param([*TRAIN, "--hyperparams", "[1, 2]"], "--hyperparams", id="train-hyperparams-not-object"),
    pytest.param([*TRAIN, "--hyperparams", '{"learning_rate": NaN}'], "NaN", id="train-nan-hyperparam"),
    pytest.param([*TRAIN, "--hyperparams", '{"learning_rate": 1e999}'], "1e999", id="train-inf-hyperparam"),
    pytest.param([*TRAIN, "--hyperparams", "[" * 100_000], "--hyperparams", id="train-deep-json"),
    pytest.param([*TRAIN, "--env-kwargs", "{bad"], "--env-kwargs", id="train-malformed-env-kwargs"),
    pytest.param([*TRAIN, "--env-kwargs", '{"bogus": 1}'], "bogus", id="train-unknown-env-kwarg"),
    pytest.param([*TRAIN, "--env-kwargs", '{"vocab_size": "x"}'], "vocab_size", id="train-ill-typed-env-kwarg"),
    pytest.param([*TRAIN, "--env-kwargs", '{"vocab_size": true}'], "vocab_size", id="train-bool-for-int-env-kwarg"),
    pytest.param(
        [*TRAIN, "--env-kwargs", '{"num_envs": 3}'],
        "'num_envs' cannot be given here: the command sets it from --num-envs; remove it from --env-kwargs",
        id="train-reserved-env-kwarg",
    ),
    pytest.param(
        ["play", EASY, "--env-kwargs", '{"render_mode": "ansi"}'],
        "'render_mode' cannot be given here: the command sets it; remove it",
        id="play-reserved-env-kwarg",
    ),
    pytest.param([*TRAIN, "--env-kwargs", '{"beta": -Infinity}'], "Infinity", id="train-inf-env-kwarg"),
    # train: things that do not exist or cannot work
    pytest.param(["train", "--agent", "nope", "--env", EASY, "--steps", "10"], "nope", id="train-unknown-agent"),
    pytest.param(
        ["train", "--agent", "qtable", "--env", "nlp_envs/Nope-v0", "--steps", "10"], "Nope", id="train-unknown-env"
    ),
    pytest.param([*TRAIN, "--device", "tpu"], "tpu", id="train-unknown-device"),
    pytest.param([*TRAIN, "--device", "cuda:99"], "cuda:99", id="train-absent-gpu"),
    pytest.param(
        ["train", "--agent", "dqn", "--env", EASY, "--steps", "10", "--hyperparams", '{"gamma": "high"}'],
        "gamma",
        id="train-ill-typed-hyperparam",
    ),
    pytest.param(
        ["train", "--agent", "sb3-ppo", "--env", EASY, "--steps", "10", "--hyperparams", '{"n_steps": 0}'],
        "n_steps",
        id="train-sb3-zero-n-steps",
    ),
    pytest.param([*TRAIN, "--save", "@tmp"], "--save", id="train-save-to-folder"),
    pytest.param([*TRAIN, "--save", "@file/agent.pt"], "--save", id="train-save-under-a-file"),
    pytest.param([*TRAIN, "--tensorboard", "@file"], "--tensorboard", id="train-tensorboard-is-a-file"),
    pytest.param([*TRAIN, "--tensorboard", "@file/runs"], "--tensorboard", id="train-tensorboard-under-a-file"),
    # collect
    pytest.param(["collect"], "ENV_ID", id="collect-nothing"),
    pytest.param(["collect", COLLECT[1]], "--policy", id="collect-missing-flags"),
    pytest.param([*COLLECT, "--epsilon", "1.5"], "--epsilon", id="collect-epsilon-above-one"),
    pytest.param([*COLLECT, "--epsilon", "nan"], "--epsilon", id="collect-nan-epsilon"),
    pytest.param([*COLLECT[:-2], "--episodes", "0"], "--episodes", id="collect-zero-episodes"),
    pytest.param([*COLLECT, "--seed", "-1"], "--seed", id="collect-negative-seed"),
    pytest.param([*COLLECT, "--num-envs", "0"], "--num-envs", id="collect-zero-envs"),
    pytest.param([*COLLECT, "--policy", "genius"], "genius", id="collect-unknown-policy"),
    pytest.param([*COLLECT, "--policy", "@tmp/agent.pt"], "agent.pt", id="collect-missing-agent-file"),
    pytest.param([*COLLECT, "--env-kwargs", '{"bogus": 1}'], "bogus", id="collect-unknown-env-kwarg"),
    pytest.param([*COLLECT, "--dataset-id", "flat-v0"], "flat-v0", id="collect-dataset-id-without-namespace"),
    pytest.param(["collect", "nlp_envs/Nope-v0", *COLLECT[2:]], "Nope", id="collect-unknown-env"),
    pytest.param(["collect", "--named", "nlp_envs/nope-v0"], "nlp_envs/nope-v0", id="collect-unknown-named"),
    pytest.param(
        ["collect", "--named", "nlp_envs/dialogue-rule-eps30-v0", "--epsilon", "0.1"],
        "--epsilon",
        id="collect-named-with-flags",
    ),
    # bench
    pytest.param(["bench", "--suite", "no-such-suite"], "no-such-suite", id="bench-unknown-suite"),
    pytest.param(["bench", "--suite", "@tmp/missing.toml"], "missing.toml", id="bench-missing-suite-file"),
    pytest.param(["bench", "--suite", "@file"], "file.txt", id="bench-suite-not-toml"),
    pytest.param(["bench", "--suite", "@suite", "--db", "@tmp"], "--db", id="bench-db-is-a-folder"),
    pytest.param(["bench", "--suite", "@suite", "--db", "@file/r.sqlite"], "--db", id="bench-db-under-a-file"),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--device", "tpu"], "tpu", id="bench-unknown-device"
    ),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--seeds", "0"], "--seeds", id="bench-zero-seeds"
    ),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--agents", "nope"],
        "nope",
        id="bench-agent-not-in-suite",
    ),
    pytest.param(["bench", "--suite", "@suite", "--executor", "slurm"], "slurm", id="bench-unknown-executor"),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--tensorboard", "@file"],
        "--tensorboard",
        id="bench-tensorboard-is-a-file",
    ),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--tensorboard", "@file/runs"],
        "--tensorboard",
        id="bench-tensorboard-under-a-file",
    ),
    pytest.param(["bench", "--suite", "@nan_steps", "--db", "@tmp/r.sqlite"], "steps", id="bench-nan-suite-field"),
    pytest.param(
        ["bench", "--suite", "@suite", "--db", "@tmp/r.sqlite", "--jobs", "0"],
        "jobs",
        id="bench-zero-jobs",
    ),
    pytest.param(
        ["bench", "--suite", "@bad_agent", "--db", "@tmp/r.sqlite"],
        "nope",
        id="bench-unknown-agent-in-suite",
    ),
    pytest.param(
        ["bench", "--suite", "@bad_env", "--db", "@tmp/r.sqlite"],
        "Nope",
        id="bench-unknown-env-in-suite",
    ),
    pytest.param(
        ["bench", "--suite", "@bad_env_kwarg", "--db", "@tmp/r.sqlite"],
        "bogus",
        id="bench-unknown-env-kwarg-in-suite",
    ),
    pytest.param(
        ["bench", "--suite", "@nan_hyperparam", "--db", "@tmp/r.sqlite"],
        "learning_rate",
        id="bench-nan-hyperparam-in-suite",
    ),
    # leaderboard
    pytest.param(["leaderboard", "--db", "@tmp"], "--db", id="leaderboard-db-is-a-folder"),
    pytest.param(["leaderboard", "--db", "@tmp/none.sqlite"], "none.sqlite", id="leaderboard-missing-db"),
    pytest.param(["leaderboard", "--db", "@file"], "file.txt", id="leaderboard-db-not-a-database"),
    pytest.param(["leaderboard", "--format", "pdf"], "pdf", id="leaderboard-unknown-format"),
    pytest.param(["leaderboard", "--output", "@tmp"], "--output", id="leaderboard-output-is-a-folder"),
    pytest.param(
        ["leaderboard", "--output", "@tmp/no/such/board.md"], "--output", id="leaderboard-output-folder-missing"
    ),
    pytest.param(["leaderboard", "--output", "@file/board.md"], "--output", id="leaderboard-output-under-a-file"),
]


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """The placeholders of the table, as files in a fresh folder."""
    suites = {
        "suite": suite_text(),
        "nan_steps": suite_text().replace("steps = 64", "steps = nan"),
        "bad_agent": suite_text(agent="nope"),
        "bad_env": suite_text().replace(EASY, "nlp_envs/Nope-v0"),
        "bad_env_kwarg": suite_text(env_extra="kwargs = { bogus = 1 }"),
        "nan_hyperparam": suite_text(agent="qtable", agent_extra="learning_rate = nan"),
    }
    folder = tmp_path / "work"
    folder.mkdir()
    result = {"tmp": str(folder)}
    for name, text in suites.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        result[name] = str(path)
    plain = tmp_path / "file.txt"
    plain.write_text("not a suite, a database or a folder\n")
    result["file"] = str(plain)
    return result


def fill(argv: list[str], paths: dict[str, str]) -> list[str]:
    """Replace each ``@name`` by its path (longest names first: ``@bad_env_kwarg`` before ``@bad_env``)."""
    filled = []
    for word in argv:
        for name in sorted(paths, key=len, reverse=True):
            word = word.replace(f"@{name}", paths[name])
        filled.append(word)
    return filled


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("argv", "names"), CASES)
def test_a_bad_input_is_one_line_naming_it(argv: list[str], names: str, paths, capsys) -> None:
    argv = fill(argv, paths)
    code = main(argv)
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert code == cli.EXIT_USER_ERROR, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nlp-envs: error: "), lines[0]
    assert names in lines[0]
    assert "Traceback" not in captured.err

    assert main(["--debug", *argv]) == code
    debug = capsys.readouterr().err
    assert "Traceback (most recent call last)" in debug and error_lines(debug)[-1] == lines[0]


def test_debug_also_works_after_the_subcommand(capsys) -> None:
    assert main(["play", "nlp_envs/Nope-v0", "--debug"]) == cli.EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_save_is_checked_before_training_and_leaves_nothing(tmp_path: Path, capsys) -> None:
    # A read-only file system refuses even root; /sys is one on Linux.
    try:
        descriptor, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:
        os.close(descriptor)
        os.unlink(probe)
        pytest.skip("needs a read-only /sys")
    assert main([*TRAIN, "--save", "/sys/nlp-envs-agent.pt"]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert "training" not in captured.out, "the refusal must come before training"
    assert error_lines(captured.err) == [
        "nlp-envs: error: --save '/sys/nlp-envs-agent.pt': the folder '/sys' is not writable (Permission denied); "
        "choose another path."
    ]
    assert not list(Path("/sys").glob(".nlp-envs-write-check.*"))


def test_the_writability_check_creates_nothing(tmp_path: Path) -> None:
    cli.check_writable(tmp_path / "new" / "sub" / "agent.pt", "--save", create_folders=True)
    assert not list(tmp_path.iterdir())
    (tmp_path / "agent.pt").write_bytes(b"old")
    cli.check_writable(tmp_path / "agent.pt", "--save", create_folders=True)
    assert [path.name for path in tmp_path.iterdir()] == ["agent.pt"]
    assert (tmp_path / "agent.pt").read_bytes() == b"old"


def test_env_kwargs_list_the_valid_names(capsys) -> None:
    assert main([*TRAIN, "--env-kwargs", '{"vocab": 5}']) == cli.EXIT_USER_ERROR
    line = capsys.readouterr().err.strip()
    assert "has no keyword argument 'vocab'; valid ones:" in line and "vocab_size" in line
    assert "num_envs" not in line.split("valid ones:")[1], "names the command sets are not offered"


def test_valid_env_kwargs_of_every_registered_env_pass_the_check() -> None:
    # The check must never refuse what the env accepts: each preset's own kwargs pass it.
    import gymnasium as gym

    for env_id in nlp_envs.env_ids():
        cli.check_env_kwargs(env_id, dict(gym.spec(env_id).kwargs), given=("num_envs", "render_mode"))


def test_an_internal_error_is_one_line_with_its_type(monkeypatch, capsys) -> None:
    def broken() -> list[str]:
        return {}["missing"]

    monkeypatch.setattr(nlp_envs, "env_ids", broken)
    assert main(["envs"]) == cli.EXIT_INTERNAL_ERROR
    lines = error_lines(capsys.readouterr().err)
    assert lines == ["nlp-envs: internal error: KeyError: 'missing' (run again with --debug for the traceback)"]
    assert main(["envs", "--debug"]) == cli.EXIT_INTERNAL_ERROR
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_env_that_cannot_be_built_does_not_hide_the_others(monkeypatch, capsys) -> None:
    import gymnasium as gym

    real_make = gym.make

    def make(env_id: str, **kwargs: object) -> object:
        if env_id == EASY:
            raise ModuleNotFoundError("pip install some-data")
        return real_make(env_id, **kwargs)

    monkeypatch.setattr(gym, "make", make)
    assert main(["envs"]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert f"{EASY}\n  cannot be built: ModuleNotFoundError: pip install some-data" in captured.out
    assert "nlp_envs/Dialogue-v0\n  observation:" in captured.out
    assert error_lines(captured.err) == [f"nlp-envs: error: 1 env(s) cannot be built: {EASY} (see above why)."]


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys) -> None:
    def interrupted() -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(nlp_envs, "env_ids", interrupted)
    assert main(["envs"]) == cli.EXIT_INTERRUPTED
    assert error_lines(capsys.readouterr().err) == ["nlp-envs: interrupted (Ctrl-C)"]


def run_cli(*argv: str, **kwargs: object) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "nlp_envs.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        **kwargs,  # type: ignore[call-overload]
    )


def test_real_exit_codes_of_the_console_entry_point() -> None:
    process = run_cli("train", "--agent", "qtable", "--env", EASY, "--steps", "0")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and error_lines(err) == [
        "nlp-envs: error: argument --steps: expected a positive integer, got '0' (see `nlp-envs train --help`)"
    ]
    process = run_cli("--debug", "play", "nlp_envs/Nope-v0")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback (most recent call last)" in err


@pytest.mark.slow
def test_sigint_during_train_exits_130_with_one_line() -> None:
    process = run_cli("train", "--agent", "qtable", "--env", EASY, "--steps", str(10**9), "--num-envs", "4")
    assert process.stdout is not None
    started = process.stdout.readline()
    assert started.startswith("training qtable"), started
    time.sleep(0.5)  # inside learn()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert error_lines(err) == ["nlp-envs: interrupted (Ctrl-C)"]


def test_a_gpu_index_the_machine_lacks_is_refused(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cli.check_device("cuda")
    cli.check_device("cuda:1")
    with pytest.raises(cli.CommandLineError, match=r"--device 'cuda:2': this machine has 2 GPU\(s\), cuda:0 to cuda:1"):
        cli.check_device("cuda:2")
    with pytest.raises(cli.CommandLineError, match="--device 'meta' is not a device"):
        cli.check_device("meta")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_ends_its_line_when_interrupted() -> None:
    stream = Terminal()
    with pytest.raises(KeyboardInterrupt), StepBar(100, stream=stream) as bar:
        bar.update(40)
        raise KeyboardInterrupt
    assert stream.getvalue().startswith("\r[") and stream.getvalue().endswith("\n")
    assert "40/100" in stream.getvalue() and "100/100" not in stream.getvalue()
    piped = io.StringIO()
    with pytest.raises(KeyboardInterrupt), StepBar(100, stream=piped) as bar:
        bar.update(40)
        raise KeyboardInterrupt
    assert piped.getvalue() == "", "off a terminal an unfinished bar writes nothing"
    with StepBar(100, stream=piped) as bar:
        bar.update(100)
    assert piped.getvalue().startswith("[##############################] 100/100 steps")


def test_bench_refuses_zero_jobs_before_the_header_and_the_database(paths, capsys) -> None:
    db = Path(paths["tmp"]) / "r.sqlite"
    assert main(["bench", "--suite", paths["suite"], "--db", str(db), "--jobs", "0"]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        "nlp-envs: error: argument --jobs: expected a positive integer, got '0' (see `nlp-envs bench --help`)"
    ]
    assert not db.exists() and not list(Path(paths["tmp"]).iterdir())


@pytest.mark.parametrize(
    ("env_extra", "expected"),
    [
        ("kwargs = { bogus = 1 }", "kwargs: nlp_envs/NextWordEasy-v0 has no keyword argument 'bogus'; valid ones:"),
        ('eval_kwargs = { vocab_size = "x" }', "eval_kwargs: vocab_size='x' has type str; "),
        ("kwargs = { vocab_size = true }", "kwargs: vocab_size=True has type bool; "),
        ("kwargs = { num_envs = 3 }", "kwargs: 'num_envs' cannot be given here: the runner sets it from the suite's"),
    ],
)
def test_a_bad_env_kwarg_in_a_suite_is_one_line_before_anything_runs(
    env_extra: str, expected: str, tmp_path: Path, capsys
) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(suite_text(env_extra=env_extra))
    db = tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    [line] = error_lines(captured.err)
    assert line.startswith(f"nlp-envs: error: suite file {str(suite)!r}: envs entry 1 ({EASY}): "), line
    assert expected in line
    assert not db.exists() and "suite 'tiny'" not in captured.err


@pytest.mark.parametrize(
    ("agent", "agent_extra", "expected"),
    [
        ("qtable", "learning_rate = nan", "[agents.qtable]: qtable: hyper-parameter learning_rate=nan is not a finite"),
        ("dqn", 'gamma = "high"', "[agents.dqn]: dqn: hyper-parameter gamma='high' has type str"),
        ("sb3-ppo", "n_steps = 0", "[agents.sb3-ppo]: sb3-ppo: hyper-parameter n_steps must be >= 1"),
        ("sb3-dqn", "policy_kwargs = 3", "[agents.sb3-dqn]: sb3-dqn: hyper-parameter policy_kwargs=3 has type int"),
        ("random", "seed = 3", "[agents.random]: random: unknown hyper-parameter(s) seed"),
    ],
)
def test_bad_hyperparameters_in_a_suite_are_one_line_before_any_cell(
    agent: str, agent_extra: str, expected: str, tmp_path: Path, capsys
) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(suite_text(agent=agent, agent_extra=agent_extra))
    db = tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    [line] = error_lines(captured.err)
    assert line.startswith(f"nlp-envs: error: suite file {str(suite)!r}: {expected}"), line
    assert not db.exists() and "suite 'tiny'" not in captured.err


def test_a_plugin_agent_without_checks_is_built_once_on_a_one_slot_env(tmp_path: Path, monkeypatch) -> None:
    import nlp_agents
    from nlp_agents.plugins import AgentEntry
    from nlp_envs.leaderboard.suites import SuiteError, load_suite

    built: list[tuple[int, dict[str, object]]] = []

    def factory(env: object, *, seed: int = 0, device: str = "auto", **hyperparams: object) -> object:
        built.append((env.num_envs, hyperparams))  # type: ignore[attr-defined]
        if hyperparams.get("width", 1) <= 0:  # type: ignore[operator]
            raise ValueError(f"plain: width must be > 0, got {hyperparams['width']}")
        # The least that nlp_agents.make takes for an agent (it refuses a factory's non-agent by name).
        return SimpleNamespace(learn=lambda total_timesteps, callback=None: None, predict=lambda observation: None)

    monkeypatch.setattr(nlp_agents, "entry", lambda name: AgentEntry(name, factory, "p", "plain-dist", "1.0"))
    suite = tmp_path / "s.toml"
    suite.write_text(suite_text(agent="plain", agent_extra="width = 4"))
    load_suite(str(suite)).check()
    assert built == [(1, {"width": 4})]
    suite.write_text(suite_text(agent="plain", agent_extra="width = 0"))
    with pytest.raises(SuiteError, match=r"\[agents.plain\]: plain: width must be > 0, got 0$"):
        load_suite(str(suite)).check()


def test_a_diverged_run_is_one_line_and_saves_nothing(tmp_path: Path, capsys) -> None:
    save = tmp_path / "agent.pt"
    argv = ["train", "--agent", "dqn", "--env", EASY, "--steps", "3000", "--eval-episodes", "2", "--save", str(save)]
    code = main([*argv, "--hyperparams", '{"learning_rate": 1e30}'])
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert code == cli.EXIT_USER_ERROR, captured.err
    assert len(lines) == 1 and lines[0].startswith("nlp-envs: error: diverged: dqn at step "), captured.err
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert not save.exists()


class _EndlessVectorEnv(gym.vector.VectorEnv):
    """A plugin's vector env whose episodes never end (no step limit), with a random reference policy."""

    metadata = {"render_modes": ["ansi"], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
    reference_policies = {"random": lambda observations, env: np.zeros(env.num_envs, dtype=np.int64)}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None) -> None:
        self.num_envs, self.render_mode = num_envs, render_mode
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed=None, options=None):
        return np.zeros((self.num_envs, 1), np.float32), {}

    def step(self, actions):
        never = np.zeros(self.num_envs, dtype=bool)
        return np.zeros((self.num_envs, 1), np.float32), np.ones(self.num_envs), never, never, {}

    def render(self):
        return ("on and on",)


def test_play_stops_an_episode_that_never_ends(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "MAX_PLAY_STEPS", 5)
    gym.register("nlp_envs_test/Endless-v0", vector_entry_point=_EndlessVectorEnv)
    try:
        assert main(["play", "nlp_envs_test/Endless-v0", "--policy", "random"]) == 0
    finally:
        gym.registry.pop("nlp_envs_test/Endless-v0")
    out = capsys.readouterr().out
    assert "step  5:" in out and "step  6:" not in out
    assert "stopped after 5 steps: the episode has not ended (does nlp_envs_test/Endless-v0 have a step limit?)" in out
