"""TensorBoard scalars of every agent, read back with TensorBoard's own reader (EventAccumulator)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nlp_agents
from nlp_agents import logger as logger_module
from nlp_agents.logger import DEFAULT_INTERVAL, EpisodeLog, Logger, TensorBoardLogger, run_folder
from nlp_envs.cli import main as cli_main
from nlp_envs.leaderboard.runner import run_cell, run_cells
from nlp_envs.leaderboard.store import ResultStore
from nlp_envs.leaderboard.suites import load_suite
from tests.conftest import collect_transitions, make_distribution, make_vec

EASY = "nlp_envs/NextWordEasy-v0"
DIALOGUE = "nlp_envs/DialogueEasy-v0"
ROLLOUT = {"rollout/ep_return_mean", "rollout/ep_length_mean", "rollout/episodes"}
NEXT_WORD_METRICS = {"rollout/words", "rollout/reference_matches", "rollout/mean_log_prob"}


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder``, as ``[(step, value), ...]``."""
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


def steps(values: dict[str, list[tuple[int, float]]], tag: str) -> list[int]:
    return [step for step, _ in values[tag]]


class Recorder(Logger):
    """A logger that keeps what it is given (a plugin's own logger needs only ``scalar``)."""

    def __init__(self, interval: int) -> None:
        super().__init__(interval)
        self.rows: list[tuple[str, float, int]] = []
        self.flushed_rows = -1

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.rows.append((tag, value, step))

    def flush(self) -> None:
        self.flushed_rows = len(self.rows)  # how many rows had been written at the last flush


# --- the built-in agents -----------------------------------------------------------------------------

AGENTS = [
    pytest.param(
        "dqn", {"learning_starts": 200, "batch_size": 32}, {"train/loss", "train/q_mean", "train/epsilon"}, id="dqn"
    ),
    pytest.param(
        "iqn", {"learning_starts": 200, "batch_size": 32}, {"train/loss", "train/q_mean", "train/epsilon"}, id="iqn"
    ),
    pytest.param("qtable", {}, {"train/loss", "train/q_mean", "train/epsilon"}, id="qtable"),
    pytest.param(
        "vlearner", {"rollout_steps": 8, "epochs": 1}, {"train/loss", "train/v_mean", "train/epsilon"}, id="vlearner"
    ),
]


@pytest.mark.parametrize(("name", "hyperparams", "own"), AGENTS)
def test_built_in_agents_write_their_scalars_every_interval(tmp_path, name, hyperparams, own) -> None:
    env = make_vec(EASY, num_envs=4)
    agent = nlp_agents.make(name, env, seed=3, tensorboard=tmp_path, **hyperparams)
    agent.learn(2 * DEFAULT_INTERVAL + 500)  # a last, partial interval: written at the end of the call
    values = scalars(tmp_path)
    expected = ROLLOUT | NEXT_WORD_METRICS | {"time/steps_per_second", "train/learning_rate"} | own
    assert set(values) == expected
    for tag in expected:
        assert steps(values, tag) == [1000, 2000, 2500], tag
    assert all(np.isfinite(value) for rows in values.values() for _, value in rows)
    episodes = sum(value for _, value in values["rollout/episodes"])
    lengths = np.array([value for _, value in values["rollout/ep_length_mean"]])
    assert 0 < episodes and np.all(lengths >= 1) and np.all(lengths <= env.unwrapped.episode_limit)


@pytest.mark.parametrize("name", ["bc", "cql"])
def test_offline_agents_write_loss_and_speed_every_interval_of_gradient_steps(tmp_path, name) -> None:
    env = make_vec(EASY, num_envs=4)
    agent = nlp_agents.make(name, env, seed=3, tensorboard=tmp_path, dataset=collect_transitions(EASY, epsilon=0.2))
    agent.learn(2 * DEFAULT_INTERVAL + 300)
    values = scalars(tmp_path)
    assert set(values) == {"train/loss", "train/learning_rate", "time/gradient_steps_per_second"}
    for tag in values:
        assert steps(values, tag) == [1000, 2000, 2300], tag
    losses = [value for _, value in values["train/loss"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["bc", "qtable"])
def test_learn_flushes_what_it_wrote_before_it_returns(name) -> None:
    """TensorBoard's writer flushes on a timer: without a flush the last points of a run can be missing."""
    env = make_vec(EASY, num_envs=4)
    extra = {"dataset": collect_transitions(EASY, epsilon=0.2)} if name == "bc" else {}
    agent = nlp_agents.make(name, env, seed=3, **extra)
    recorder = Recorder(interval=100)
    agent.set_logger(recorder)
    agent.learn(250)
    assert recorder.flushed_rows == len(recorder.rows) > 0
    assert max(step for _, _, step in recorder.rows) == agent.num_timesteps >= 250  # online: whole vector steps


def test_learning_continues_the_steps_and_the_interval(tmp_path) -> None:
    agent = nlp_agents.make("qtable", make_vec(EASY, num_envs=4), tensorboard=tmp_path)
    agent.learn(1500).learn(1500)
    assert steps(scalars(tmp_path), "train/q_mean") == [1000, 1500, 2000, 3000]


def test_epsilon_follows_the_schedule(tmp_path) -> None:
    agent = nlp_agents.make("qtable", make_vec(EASY, num_envs=4), tensorboard=tmp_path, exploration_fraction=0.5)
    agent.learn(4000)
    epsilon = dict(scalars(tmp_path)["train/epsilon"])
    assert epsilon[1000] == pytest.approx(1.0 - 0.95 * 1000 / 2000)
    assert epsilon[3000] == pytest.approx(0.05)


def test_logging_changes_no_result(tmp_path) -> None:
    plain = nlp_agents.make("dqn", make_vec(EASY, num_envs=4), seed=5, learning_starts=200, batch_size=32)
    logged = nlp_agents.make(
        "dqn", make_vec(EASY, num_envs=4), seed=5, learning_starts=200, batch_size=32, tensorboard=tmp_path
    )
    plain.learn(1500)
    logged.learn(1500)
    for (key, a), (_, b) in zip(plain.q.state_dict().items(), logged.q.state_dict().items(), strict=True):
        assert a.equal(b), key
    assert scalars(tmp_path)


def test_a_plugin_logger_gets_aggregates_every_interval_only() -> None:
    env = make_vec(DIALOGUE, num_envs=4)
    agent = nlp_agents.make("random", env, seed=1)
    recorder = Recorder(interval=100)
    agent.set_logger(recorder)
    agent.learn(1000)
    written = sorted({step for _, _, step in recorder.rows})
    assert written == list(range(100, 1001, 100))
    tags = {tag for tag, _, _ in recorder.rows}
    assert {"rollout/success", "rollout/turns", "rollout/handoff"} <= tags  # the env's task metrics
    assert all(0.0 <= value <= 1.0 for tag, value, _ in recorder.rows if tag == "rollout/success")


def test_episode_log_counts_next_step_autoreset_exactly() -> None:
    recorder = Recorder(interval=10)
    log = EpisodeLog(recorder, num_envs=2, metric_names=("success",))
    log.start(0)
    valid = np.array([True, True])
    log.step(np.array([1.0, 2.0]), np.array([False, False]), valid, {})
    log.step(np.array([1.0, 2.0]), np.array([True, False]), valid, {"success": np.array([1.0, 0.0])})
    # Slot 0's reset step: its reward (if any) and the step belong to no episode.
    log.step(np.array([5.0, 2.0]), np.array([False, True]), np.array([False, True]), {"success": np.array([0.0, 0.5])})
    log.write(6)
    written = {tag: value for tag, value, _ in recorder.rows}
    assert written["rollout/episodes"] == 2
    assert written["rollout/ep_return_mean"] == pytest.approx((2.0 + 6.0) / 2)
    assert written["rollout/ep_length_mean"] == pytest.approx((2 + 3) / 2)
    assert written["rollout/success"] == pytest.approx((1.0 + 0.5) / 2)
    recorder.rows.clear()
    log.step(np.array([1.0, 1.0]), np.array([False, False]), valid, {})
    log.write(8)
    assert not any(tag.startswith("rollout/") for tag, _, _ in recorder.rows), "no episode ended: no rollout tags"


def test_steps_per_second_leave_out_the_time_spent_in_the_callback(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(logger_module.time, "perf_counter", lambda: now[0])
    recorder = Recorder(interval=100)
    log = EpisodeLog(recorder, num_envs=1)
    log.start(0)

    def evaluate(_agent: object, _done: int) -> bool:
        now[0] += 30.0  # a bench cell's evaluation: not training
        return True

    now[0] = 6.0
    assert log.timed(evaluate)(None, 60) is True
    now[0] += 4.0
    log.write(100)
    assert recorder.rows == [("time/steps_per_second", pytest.approx(100 / 10.0), 100)]


# --- Stable-Baselines3 ---------------------------------------------------------------------------------


def test_sb3_agent_writes_our_tags_and_sb3s_losses(tmp_path) -> None:
    env = make_vec(DIALOGUE, num_envs=4)
    agent = nlp_agents.make("sb3-ppo", env, seed=0, tensorboard=tmp_path, n_steps=64, batch_size=64, n_epochs=1)
    agent.learn(2000)  # PPO collects whole rollouts of 256 steps: it stops at 2048
    values = scalars(tmp_path)
    ours = ROLLOUT | {"rollout/success", "rollout/turns", "rollout/handoff", "time/steps_per_second"}
    ours |= {"train/learning_rate", "train/v_mean"}
    assert ours <= set(values)
    assert {"train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "train/loss"} <= set(values)
    for tag in ours:
        assert steps(values, tag) == [1000, 2000, 2048], tag
    assert values["train/learning_rate"][0][1] == pytest.approx(3e-4)


def test_sb3_dqn_writes_epsilon_and_mean_q(tmp_path) -> None:
    agent = nlp_agents.make("sb3-dqn", make_vec(EASY, num_envs=4), tensorboard=tmp_path, learning_starts=100)
    agent.learn(1200)
    values = scalars(tmp_path)
    assert {"train/epsilon", "train/q_mean", "train/loss"} <= set(values)
    assert steps(values, "train/q_mean") == [1000, 1200]


@pytest.mark.parametrize("env_id", [EASY, "nlp_envs/DialogueEasy-v0"])  # without and with action masks
def test_qrdqn_writes_the_mean_q_of_its_quantiles(tmp_path, env_id) -> None:
    hyperparams = {"learning_starts": 100, "policy_kwargs": {"n_quantiles": 5, "net_arch": [16]}}
    agent = nlp_agents.make("qrdqn", make_vec(env_id, num_envs=4), tensorboard=tmp_path, **hyperparams)
    agent.learn(1200)
    values = scalars(tmp_path)
    assert {"train/epsilon", "train/q_mean", "train/loss"} <= set(values)
    assert steps(values, "train/q_mean") == [1000, 1200]
    assert all(np.isfinite(value) and abs(value) < 1e3 for _, value in values["train/q_mean"])


# --- refusals ---------------------------------------------------------------------------------------


def test_a_plugin_agent_without_set_logger_is_refused_and_leaves_no_folder(
    tmp_path, monkeypatch, fresh_plugins
) -> None:
    plugin = """
        from nlp_agents import hookimpl

        class Silent:  # an agent (nlp_agents.make refuses what has no learn and predict), without set_logger
            def __init__(self, env, *, seed=0, device="auto", **hyperparams):
                self.env = env

            def learn(self, total_timesteps, callback=None):
                return self

            def predict(self, observation, deterministic=True):
                return observation

        @hookimpl
        def register_agents(register):
            register("silent", Silent)
    """
    make_distribution(
        tmp_path / "site", "silent-plugin", {"silent": "nlp_envs_test_silent"}, {"nlp_envs_test_silent": plugin}
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    runs = tmp_path / "runs"
    with pytest.raises(nlp_agents.LoggerNotSupportedError, match=r"'silent'.*set_logger"):
        nlp_agents.make("silent", make_vec(EASY), tensorboard=runs)
    assert not runs.exists()
    assert nlp_agents.make("silent", make_vec(EASY)).env is not None  # without TensorBoard it still works


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    for module in [name for name in sys.modules if name == "tensorboard" or name.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like to import
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'nlp-envs\[tensorboard\]'"):
        nlp_agents.make("qtable", make_vec(EASY), tensorboard=tmp_path / "runs")
    code = cli_main(["train", "--agent", "qtable", "--env", EASY, "--steps", "8", "--tensorboard", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and "training" not in captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "nlp-envs[tensorboard]" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_tensorboard_logger_refuses_bad_values(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(TypeError, match="'train/loss'"):
        logger.scalar("train/loss", "low", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step"):
        logger.scalar("train/loss", 1.0, -1)
    logger.close()
    with pytest.raises(ValueError, match="closed"):
        logger.scalar("train/loss", 1.0, 1)
    with pytest.raises(ValueError, match="interval"):
        Logger(interval=0)
    with pytest.raises(TypeError, match="Logger"):
        nlp_agents.make("qtable", make_vec(EASY)).set_logger(print)


def test_run_folders_are_agent_env_seed(tmp_path) -> None:
    assert (
        run_folder(tmp_path, "sb3-ppo", "nlp_envs/NextWord-v0", 3)
        == tmp_path / "sb3-ppo" / "nlp_envs_NextWord-v0" / "seed-3"
    )
    assert run_folder(tmp_path, "../x", "a b", 0) == tmp_path / "_x" / "a_b" / "seed-0"


# --- the command line and the leaderboard ----------------------------------------------------------------


def test_train_writes_a_run_folder_with_the_final_score(tmp_path, capsys) -> None:
    argv = ["train", "--agent", "qtable", "--env", EASY, "--steps", "1200", "--seed", "2", "--eval-episodes", "4"]
    assert cli_main([*argv, "--tensorboard", str(tmp_path)]) == 0
    folder = tmp_path / "qtable" / "nlp_envs_NextWordEasy-v0" / "seed-2"
    assert str(folder) in capsys.readouterr().out
    values = scalars(folder)
    assert steps(values, "train/q_mean") == [1000, 1200]
    assert steps(values, "eval/final_normalized_score") == [1200]


def test_training_again_replaces_the_earlier_run_of_its_folder(tmp_path, capsys) -> None:
    """A second ``train`` of the same agent, env and seed leaves one run in the folder, not two drawn as one."""
    argv = ["train", "--agent", "qtable", "--env", EASY, "--steps", "1200", "--seed", "2", "--eval-episodes", "4"]
    folder = tmp_path / "qtable" / "nlp_envs_NextWordEasy-v0" / "seed-2"
    assert cli_main([*argv, "--tensorboard", str(tmp_path)]) == 0
    assert "replaced" not in capsys.readouterr().out
    assert cli_main([*argv, "--tensorboard", str(tmp_path)]) == 0
    assert "replaced 1 event file(s) of an earlier run" in capsys.readouterr().out
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert steps(scalars(folder), "train/q_mean") == [1000, 1200]


SUITE = f"""
name = "tb"
seeds = 2
steps = 1200
num_envs = 4
eval_episodes = 4
curve_points = 3
curve_episodes = 4

[[envs]]
id = "{EASY}"

[agents.qtable]
[agents.dqn]
learning_starts = 100
batch_size = 32
"""


def test_bench_writes_one_run_folder_per_cell(tmp_path) -> None:
    path = tmp_path / "tb.toml"
    path.write_text(SUITE)
    suite = load_suite(str(path))
    cells = suite.cells(device="cpu")
    runs = tmp_path / "runs"
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_cells(cells, store, stream=io.StringIO(), tensorboard=runs)
    assert not summary.failed and len(summary.finished) == 4
    folders = sorted(str(folder.relative_to(runs)) for folder in runs.glob("*/*/*"))
    assert folders == [
        f"{agent}/nlp_envs_NextWordEasy-v0/seed-{seed}" for agent in ("dqn", "qtable") for seed in (0, 1)
    ]
    for result in summary.finished:
        values = scalars(run_folder(runs, result.agent, result.env_name, result.seed))
        curve = [(int(step), value) for step, value in result.learning_curve]
        assert [(step, pytest.approx(value)) for step, value in values["eval/mean_return"]] == curve
        assert steps(values, "eval/normalized_score") == [400, 800, 1200]
        assert values["eval/final_normalized_score"][0][1] == pytest.approx(result.normalized_score)
        assert steps(values, "train/q_mean") == [1000, 1200]


def test_a_bench_cell_run_again_replaces_its_stale_run_folder(tmp_path) -> None:
    """A cell runs again when its store has no result (a crash, a new database, another suite).

    The old scalars go, and the run says so.
    """
    path = tmp_path / "tb.toml"
    path.write_text(SUITE)
    cells = load_suite(str(path)).cells(device="cpu")[:1]
    runs = tmp_path / "runs"
    for attempt in range(2):
        stream = io.StringIO()
        with ResultStore(tmp_path / f"r{attempt}.sqlite") as store:
            summary = run_cells(cells, store, stream=stream, tensorboard=runs)
        assert len(summary.finished) == 1
        replacing = "note: 1 cell(s) to run will replace the event files that an earlier run left" in stream.getvalue()
        assert replacing == bool(attempt)  # said on the second run only, naming the folder
    result = summary.finished[0]
    folder = run_folder(runs, result.agent, result.env_name, result.seed)
    assert str(folder) in stream.getvalue()
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert steps(scalars(folder), "eval/normalized_score") == [400, 800, 1200]


def test_a_bench_cell_of_an_agent_without_set_logger_fails_with_the_reason(tmp_path, monkeypatch) -> None:
    path = tmp_path / "tb.toml"
    path.write_text(SUITE)
    cell = load_suite(str(path)).cells(agents=["qtable"], seeds=1, device="cpu")[0]
    monkeypatch.setattr(type(nlp_agents.make("qtable", make_vec(EASY))), "set_logger", None)
    with pytest.raises(nlp_agents.LoggerNotSupportedError, match="set_logger"):
        run_cell(cell, tensorboard=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
