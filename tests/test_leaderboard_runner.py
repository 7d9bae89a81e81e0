"""The runner: independent seeds on a common evaluation set, masks notes, dead workers, Ctrl-C, Ray."""

from __future__ import annotations

import dataclasses
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nlp_agents
from nlp_envs import cli
from nlp_envs.leaderboard import ResultStore, load_suite, run_cell, run_cells
from nlp_envs.leaderboard import runner as runner_module
from nlp_envs.leaderboard.runner import (
    CURVE_EVAL_SEED,
    FINAL_EVAL_SEED,
    MASKS_IGNORED_NOTE,
    MAX_SEED,
    SEED_STRIDE,
    training_seed,
)
from tests.test_leaderboard import TINY_SUITE

ROOT = Path(__file__).resolve().parents[1]


def suite_file(tmp_path: Path, text: str = TINY_SUITE, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_training_seeds_of_different_cells_share_no_slot_and_no_evaluation_episode() -> None:
    num_envs, episodes = SEED_STRIDE, SEED_STRIDE
    blocks = [range(training_seed(seed, num_envs), training_seed(seed, num_envs) + num_envs) for seed in range(40)]
    blocks.append(range(training_seed(MAX_SEED, num_envs), training_seed(MAX_SEED, num_envs) + num_envs))
    blocks += [range(FINAL_EVAL_SEED, FINAL_EVAL_SEED + episodes), range(CURVE_EVAL_SEED, CURVE_EVAL_SEED + episodes)]
    starts = sorted(blocks, key=lambda block: block.start)
    assert all(first.stop <= second.start for first, second in zip(starts, starts[1:], strict=False))
    assert blocks[40].stop <= 2**32  # every slot seed fits 32 bits
    for seed, envs in [(-1, 8), (MAX_SEED + 1, 8), (0, SEED_STRIDE + 1), (0, 0)]:
        with pytest.raises(ValueError, match="seed|num_envs"):
            training_seed(seed, envs)


def test_every_cell_is_evaluated_on_the_same_episodes_and_trains_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluations: list[tuple[int, int]] = []
    trained: list[int] = []
    real_evaluate, real_make = runner_module.evaluate, nlp_agents.make

    def recording_evaluate(env_id: str, policy: Any, *, episodes: int, seed: int, env_kwargs: Any) -> Any:
        evaluations.append((seed, episodes))
        return real_evaluate(env_id, policy, episodes=episodes, seed=seed, env_kwargs=env_kwargs)

    def recording_make(name: str, env: Any, seed: int = 0, **kwargs: Any) -> Any:
        trained.append(seed)
        return real_make(name, env, seed=seed, **kwargs)

    monkeypatch.setattr(runner_module, "evaluate", recording_evaluate)
    monkeypatch.setattr(nlp_agents, "make", recording_make)
    cells = load_suite(str(suite_file(tmp_path))).cells()  # 2 agents x 2 seeds, 2 curve points
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_cells(cells, store)
    assert len(summary.finished) == 4
    per_cell = [evaluations[index : index + 3] for index in range(0, len(evaluations), 3)]
    assert len(per_cell) == 4 and all(calls == per_cell[0] for calls in per_cell)
    assert per_cell[0] == [(CURVE_EVAL_SEED, 5), (CURVE_EVAL_SEED, 5), (FINAL_EVAL_SEED, 20)]
    slots = [set(range(seed, seed + cells[0].num_envs)) for seed in trained]
    evaluated = set(range(FINAL_EVAL_SEED, FINAL_EVAL_SEED + 20)) | set(range(CURVE_EVAL_SEED, CURVE_EVAL_SEED + 5))
    seed_of = [cell.seed for cell in cells]
    for one in range(4):
        assert not slots[one] & evaluated
        for other in range(4):
            if seed_of[one] != seed_of[other]:
                assert not slots[one] & slots[other]


class MaskBlindAgent:
    """An agent whose ``predict`` takes no ``action_masks`` (it plays act 0)."""

    def __init__(self, env: Any) -> None:
        self.num_timesteps = 0
        self.env = env

    def learn(self, total_timesteps: int, callback: Any = None) -> MaskBlindAgent:
        self.num_timesteps = total_timesteps
        if callback is not None:
            callback(self, total_timesteps)
        return self

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return np.zeros(len(observation), dtype=np.int64)


MASKED_SUITE = """
name = "masked"
seeds = 1
steps = 64
num_envs = 4
eval_episodes = 4
curve_points = 1
curve_episodes = 2

[[envs]]
id = "nlp_envs/DialogueEasy-v0"

[[envs]]
id = "nlp_envs/NextWordEasy-v0"

[agents.random]
"""


def test_an_agent_that_ignores_action_masks_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialogue, next_word = load_suite(str(suite_file(tmp_path, MASKED_SUITE))).cells()
    assert run_cell(dialogue).notes == []  # random takes the masks
    monkeypatch.setattr(nlp_agents, "make", lambda name, env, **kwargs: MaskBlindAgent(env))
    assert run_cell(dialogue).notes == [MASKS_IGNORED_NOTE]
    assert run_cell(next_word).notes == []  # no masks to ignore


KILLER_MODULE = """
import os
from pathlib import Path

import nlp_agents
from nlp_envs import cli


def kill_always(env, *, seed=0, device="auto"):
    os._exit(3)


def kill_once(env, *, seed=0, device="auto", marker=""):
    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(3)
    return nlp_agents.make("random", env, seed=seed, device=device)


@nlp_agents.hookimpl
def register_agents(register):
    register("test-kill-always", kill_always)
    register("test-kill-once", kill_once)
"""


@pytest.fixture
def killer_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed agent plugin whose agents end their worker process (seen by spawned workers)."""
    site = tmp_path / "site"
    (site / "nlp_envs_killer_test").mkdir(parents=True)
    (site / "nlp_envs_killer_test" / "__init__.py").write_text(KILLER_MODULE, encoding="utf-8")
    info = site / "nlp_envs_killer_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nlp-envs-killer-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nlp_envs]\nkiller-test = nlp_envs_killer_test\n")
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_only_a_cell_that_kills_twice_fails(killer_plugin: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = TINY_SUITE.replace("seeds = 2", "seeds = 1").replace("steps = 400", "steps = 100")
    text += f'\n[agents.test-kill-always]\n\n[agents.test-kill-once]\nmarker = "{marker}"\n'
    cells = load_suite(str(suite_file(tmp_path, text))).cells(agents=["random", "test-kill-always", "test-kill-once"])
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_cells(cells, store, jobs=2)
        stored = sorted(row.agent for row in store.results())
    assert stored == ["random", "test-kill-once"] and marker.exists()
    assert [(cell.agent, reason.split(":")[0]) for cell, reason in summary.failed] == [
        ("test-kill-always", "worker died")
    ]


def wait_for_cells(db: Path, count: int, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    if connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0] >= count:
                        return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    pytest.fail(f"no {count} cells in {db} within {seconds} s (rc {process.poll()})")


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_cleanly_with_a_summary_and_exit_code_130(tmp_path: Path, jobs: int) -> None:
    suite = suite_file(tmp_path, TINY_SUITE.replace("seeds = 2", "seeds = 6").replace("steps = 400", "steps = 3000"))
    db = tmp_path / "int.sqlite"
    command = [sys.executable, "-m", "nlp_envs.cli", "bench", "--suite", str(suite), "--db", str(db)]
    process = subprocess.Popen(
        [*command, "--jobs", str(jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    try:
        wait_for_cells(db, 1, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "cells run" in stderr and "interrupted:" in stderr and "run the same command again" in stderr


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ray_without_a_reachable_cluster_fails_within_seconds_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port()}"
    command = [sys.executable, "-m", "nlp_envs.cli", "bench", "--suite", str(suite_file(tmp_path))]
    command += ["--db", str(tmp_path / "r.sqlite"), "--executor", "ray", "--address", address]
    began = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert time.monotonic() - began < 60
    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "cannot reach a Ray cluster" in lines[0], finished.stderr
    assert not (tmp_path / "r.sqlite").exists()


def test_a_malformed_ray_address_is_named() -> None:
    with pytest.raises(ValueError, match="not a Ray address"):
        runner_module.check_ray_address("nowhere")


def test_run_cells_takes_any_iterable(tmp_path: Path) -> None:
    cells = load_suite(str(suite_file(tmp_path))).cells(agents=["random"], seeds=1)
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_cells((cell for cell in cells), store)
    assert len(summary.finished) == 1 and summary.to_run == 1


def test_bench_ends_with_one_line_per_failure_and_keeps_tracebacks_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failure only the cell finds: the up-front hyper-parameter check is skipped here.
    monkeypatch.setattr("nlp_envs.leaderboard.suites.Suite.check_agent", lambda *args, **kwargs: None)
    text = TINY_SUITE.replace("seeds = 2", "seeds = 1").replace("[agents.qtable]", "[agents.qtable]\ncolour = 1")
    db = tmp_path / "r.sqlite"
    assert cli.main(["bench", "--suite", str(suite_file(tmp_path, text)), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    failures = [line for line in err.splitlines() if "FAILED" in line]
    assert len(failures) == 1 and "qtable on nlp_envs/NextWordEasy-v0 seed 0: " in failures[0], err
    assert "colour" in failures[0] and "Traceback" not in err
    assert "1 cells run" in err and "1 failed" in err
    log = db.with_name(db.name + ".failures.log")
    assert f"(full tracebacks in {log})" in err and "Traceback" in log.read_text(encoding="utf-8")


def test_results_of_another_seeding_rule_never_count_as_done(tmp_path: Path) -> None:
    (cell,) = load_suite(str(suite_file(tmp_path))).cells(agents=["random"], seeds=1)
    assert runner_module.cell_key(cell)[4] != cell.config_hash
    assert runner_module.cell_config(cell) == cell.config | {"seeding": runner_module.SEEDING_RULE}


def test_a_cell_outside_the_seeding_rule_is_refused_before_anything_runs(tmp_path: Path) -> None:
    cells = load_suite(str(suite_file(tmp_path))).cells(agents=["random"], seeds=1)
    too_wide = dataclasses.replace(cells[0], seed=1, num_envs=SEED_STRIDE + 1)
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match=f"num_envs must be in 1..{SEED_STRIDE}"):
            run_cells([*cells, too_wide], store)
        assert store.results() == []
