"""The agent plugin system: discovery, broken plugins, blocking, duplicates, env plugins, make/load errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import nlp_agents
from nlp_agents import plugins
from nlp_envs import plugins as env_plugins
from nlp_envs.cli import main as cli_main
from tests.conftest import make_distribution

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "plugins" / "nlp-envs-sb3-contrib"
BUILTINS = {"random", "qtable", "dqn", "vlearner", "bc", "cql", "iqn", "sb3-a2c", "sb3-ppo", "sb3-dqn"}


AGENT_PLUGIN = """
    from nlp_agents import hookimpl

    class Echo:
        def __init__(self, env, *, seed=0, device="auto", **hyperparams):
            self.env = env

    @hookimpl
    def register_agents(register):
        register({name!r}, Echo)
"""


def test_builtins_are_discovered_through_entry_points(fresh_plugins) -> None:
    names = nlp_agents.available()
    assert BUILTINS <= set(names)
    assert all(names[name].startswith("nlp-envs ") for name in BUILTINS)
    points = {point.name for point in plugins.entry_points() if plugins.distribution_of(point)[0] == "nlp-envs"}
    assert points == {"random", "qtable", "dqn", "vlearner", "bc", "cql", "iqn", "sb3"}


def test_separate_plugin_package_is_discovered(contrib_installed, fresh_plugins) -> None:
    names = nlp_agents.available()
    assert names["qrdqn"].startswith("nlp-envs-sb3-contrib ")
    assert names["maskable-ppo"].startswith("nlp-envs-sb3-contrib ")


def test_broken_plugin_is_reported_and_others_load(tmp_path, monkeypatch, fresh_plugins, capsys) -> None:
    make_distribution(
        tmp_path,
        "broken-plugin",
        {"broken": "nlp_envs_test_broken"},
        {"nlp_envs_test_broken": "raise ImportError('this plugin needs a package that is not installed')\n"},
    )
    make_distribution(
        tmp_path,
        "buggy-plugin",
        {"buggy": "nlp_envs_test_buggy"},
        {
            "nlp_envs_test_buggy": """
            from nlp_agents import hookimpl

            @hookimpl
            def register_agents(register):
                raise RuntimeError("bug in register_agents")
        """
        },
    )
    make_distribution(
        tmp_path,
        "good-plugin",
        {"good": "nlp_envs_test_good"},
        {"nlp_envs_test_good": AGENT_PLUGIN.format(name="echo")},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = plugins.registry()
    failed = {status.name: status for status in registry.failures()}
    assert set(failed) == {"broken", "buggy"}
    assert "ImportError" in failed["broken"].error and "not installed" in failed["broken"].error
    assert "bug in register_agents" in failed["buggy"].error
    assert {"echo", *BUILTINS} <= set(nlp_agents.available())
    assert cli_main(["agents"]) == 0
    out = capsys.readouterr().out
    assert "broken-plugin" in out and "failed: import failed: ImportError" in out
    assert "buggy-plugin" in out and "echo" in out
    with pytest.raises(nlp_agents.UnknownAgentError, match="failed to load: broken"):
        nlp_agents.make("not-an-agent", None)


def test_block_variable_skips_named_plugins(tmp_path, monkeypatch, fresh_plugins) -> None:
    make_distribution(
        tmp_path,
        "good-plugin",
        {"good": "nlp_envs_test_good2"},
        {"nlp_envs_test_good2": AGENT_PLUGIN.format(name="echo2")},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "echo2" in nlp_agents.available()
    monkeypatch.setenv(plugins.BLOCK_VARIABLE, " sb3 , good")  # read when loading runs, not at import
    names = nlp_agents.available()
    assert "echo2" not in names and not {"sb3-a2c", "sb3-ppo", "sb3-dqn"} & set(names)
    assert {"random", "dqn"} <= set(names)
    with pytest.raises(nlp_agents.UnknownAgentError, match="Blocked by NLP_ENVS_BLOCK_PLUGINS: .*sb3"):
        nlp_agents.make("sb3-ppo", None)
    statuses = {status.name: status.status for status in plugins.registry().plugins}
    assert statuses["good"] == statuses["sb3"] == "blocked"


def test_duplicate_agent_name_is_an_error_naming_both_distributions(tmp_path, monkeypatch, fresh_plugins) -> None:
    make_distribution(
        tmp_path,
        "first-plugin",
        {"first": "nlp_envs_test_first"},
        {"nlp_envs_test_first": AGENT_PLUGIN.format(name="twin")},
    )
    make_distribution(
        tmp_path,
        "second-plugin",
        {"second": "nlp_envs_test_second"},
        {"nlp_envs_test_second": AGENT_PLUGIN.format(name="twin")},
    )
    make_distribution(
        tmp_path,
        "third-plugin",
        {"third": "nlp_envs_test_third"},
        {"nlp_envs_test_third": AGENT_PLUGIN.format(name="dqn")},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(nlp_agents.AgentConflictError) as error:
        nlp_agents.make("twin", None)
    assert "first-plugin" in str(error.value) and "second-plugin" in str(error.value)
    with pytest.raises(nlp_agents.AgentConflictError, match="nlp-envs .*third-plugin"):
        nlp_agents.make("dqn", None)
    assert "twin" not in nlp_agents.available() and "random" in nlp_agents.available()
    rows = [row for row in plugins.describe() if row["agent"] == "twin"]
    assert len(rows) == 2 and all(row["status"].startswith("conflict") for row in rows)


ENV_PLUGIN = """
    from nlp_envs.plugins import hookimpl

    @hookimpl
    def register_envs(register):
        register(
            id="nlp_envs_test/TinyNextWord-v0",
            entry_point="nlp_envs.next_word:NextWordEnv",
            vector_entry_point="nlp_envs.next_word:NextWordVectorEnv",
            max_episode_steps=3,
            reward_threshold=-9.0,
            kwargs={"vocab_size": 8, "context": 1, "prompt_words": 1, "max_words": 3, "min_words": 1},
        )
"""


def test_env_plugin_registers_envs(tmp_path, monkeypatch, fresh_plugins) -> None:
    make_distribution(
        tmp_path,
        "env-plugin",
        {"tiny-envs": "nlp_envs_test_envs"},
        {"nlp_envs_test_envs": ENV_PLUGIN},
        group="nlp_envs.envs",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert env_plugins.register_plugin_envs() == ["nlp_envs_test/TinyNextWord-v0"]
        assert env_plugins.register_plugin_envs() == []  # idempotent
        env = gym.make_vec("nlp_envs_test/TinyNextWord-v0", num_envs=2, vectorization_mode="vector_entry_point")
        agent = nlp_agents.make("qtable", env).learn(64)
        assert agent.predict(env.reset(seed=0)[0]).shape == (2,)
    finally:
        gym.registry.pop("nlp_envs_test/TinyNextWord-v0", None)
        env_plugins._ENV_OWNERS.pop("nlp_envs_test/TinyNextWord-v0", None)


def test_installing_an_env_plugin_is_enough_in_a_fresh_interpreter(tmp_path) -> None:
    make_distribution(
        tmp_path,
        "env-plugin",
        {"tiny-envs": "nlp_envs_test_envs"},
        {"nlp_envs_test_envs": ENV_PLUGIN},
        group="nlp_envs.envs",
    )
    make_distribution(
        tmp_path,
        "broken-plugin",
        {"broken": "nlp_envs_test_broken"},
        {"nlp_envs_test_broken": "import a_module_that_does_not_exist\n"},
        group="nlp_envs.envs",
    )
    code = (
        "import warnings, gymnasium as gym\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    env = gym.make('nlp_envs:nlp_envs_test/TinyNextWord-v0')\n"
        "print(env.observation_space)\n"
        "print([str(w.message) for w in caught])\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "MultiDiscrete([9 4])" in result.stdout
    assert "plugin 'broken' from broken-plugin was not loaded" in result.stdout
    assert "a_module_that_does_not_exist" in result.stdout


def test_env_plugin_reusing_a_builtin_id_is_reported(tmp_path, monkeypatch, fresh_plugins) -> None:
    code = ENV_PLUGIN.replace("nlp_envs_test/TinyNextWord-v0", "nlp_envs/NextWordEasy-v0")
    make_distribution(
        tmp_path,
        "copycat",
        {"copycat": "nlp_envs_test_copycat"},
        {"nlp_envs_test_copycat": code},
        group="nlp_envs.envs",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(plugins.PluginWarning, match="'nlp_envs/NextWordEasy-v0' is already registered"):
        assert env_plugins.register_plugin_envs() == []
    assert gym.spec("nlp_envs/NextWordEasy-v0").max_episode_steps == 4


def test_fresh_managers_have_our_hookspecs() -> None:
    manager = plugins.new_plugin_manager()
    assert manager.project_name == "nlp_envs"
    assert "register_agents" in set(vars(manager.hook))
    env_manager = env_plugins.new_env_plugin_manager()
    assert env_manager.project_name == "nlp_envs"
    assert set(vars(env_manager.hook)) == {"register_envs"}  # the env host knows nothing of agents
    assert nlp_agents.hookimpl is plugins.hookspecs.hookimpl is env_plugins.hookimpl


def test_unknown_agent_lists_available(fresh_plugins) -> None:
    with pytest.raises(nlp_agents.UnknownAgentError, match="available agents: .*dqn.*vlearner"):
        nlp_agents.make("dqm", None)


@pytest.fixture
def easy_env():
    env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=4, vectorization_mode="vector_entry_point")
    yield env
    env.close()


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"),
    [
        ("dqn", {"lr": 0.1}, r"unknown hyper-parameter\(s\) lr\. Accepted: learning_rate: float = 0\.001"),
        ("dqn", {"batch_size": "big"}, r"batch_size='big' has type str; expected int"),
        ("dqn", {"batch_size": 0}, r"batch_size must be >= 1"),
        ("dqn", {"hidden_sizes": [32, "x"]}, r"hidden_sizes='x' has type str; expected int"),
        ("qtable", {"gamma": 2.0}, r"gamma must be in \[0, 1\]"),
        ("qtable", {"learning_rate": True}, r"learning_rate=True has type bool; expected float"),
        ("vlearner", {"lambda": 0.5}, r"Accepted: .*td_lambda: float = 0\.7"),
        ("random", {"epsilon": 0.1}, r"unknown hyper-parameter\(s\) epsilon"),
        ("sb3-ppo", {"n_step": 8}, r"unknown hyper-parameter\(s\) n_step\. Accepted: .*n_steps=2048"),
        ("sb3-dqn", {"batch_size": 3.5}, r"batch_size=3\.5 has type float; expected int"),
        ("sb3-a2c", {"policy_kwargs": {"activation_fn": object}}, r"not a JSON value"),
    ],
)
def test_hyperparameter_errors_list_what_is_accepted(easy_env, name, kwargs, pattern) -> None:
    with pytest.raises(nlp_agents.HyperparameterError, match=pattern):
        nlp_agents.make(name, easy_env, **kwargs)


def test_hyperparameters_are_coerced(easy_env) -> None:
    agent = nlp_agents.make("dqn", easy_env, hidden_sizes=[32], learning_rate=1, batch_size=64.0)
    assert agent.config.hidden_sizes == (32,) and agent.config.learning_rate == 1.0 and agent.config.batch_size == 64


def test_make_needs_a_vector_env() -> None:
    env = gym.make("nlp_envs/NextWordEasy-v0")
    with pytest.raises(nlp_agents.UnsupportedEnvError, match="gym.make_vec"):
        nlp_agents.make("dqn", env)


def test_bad_seed_and_device(easy_env) -> None:
    with pytest.raises(nlp_agents.HyperparameterError, match="seed must be a non-negative integer"):
        nlp_agents.make("qtable", easy_env, seed=-1)
    with pytest.raises(nlp_agents.HyperparameterError, match="device='gpu' is not a device"):
        nlp_agents.make("dqn", easy_env, device="gpu")


def test_cli_train_shows_progress_saves_and_evaluates(tmp_path, capsys, fresh_plugins) -> None:
    path = tmp_path / "agent.pt"
    code = cli_main(
        [
            "train",
            "--agent",
            "qtable",
            "--env",
            "nlp_envs/NextWordEasy-v0",
            "--steps",
            "3000",
            "--seed",
            "1",
            "--device",
            "cpu",
            "--num-envs",
            "4",
            "--save",
            str(path),
            "--eval-episodes",
            "50",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "3,000/3,000 steps" in captured.err
    assert path.exists() and "saved to" in captured.out
    assert "evaluation: qtable on nlp_envs/NextWordEasy-v0: mean return" in captured.out
    assert "normalised score" in captured.out
    env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert nlp_agents.load(path, env).num_timesteps >= 3000


def test_cli_train_errors_are_one_line(capsys, fresh_plugins) -> None:
    code = cli_main(
        [
            "train",
            "--agent",
            "dqn",
            "--env",
            "nlp_envs/NextWordEasy-v0",
            "--steps",
            "10",
            "--hyperparams",
            '{"gamma": "high"}',
        ]
    )
    assert code == 2
    assert "gamma='high' has type str; expected float" in capsys.readouterr().err


def test_the_plugin_readme_example_works(tmp_path, monkeypatch, capsys, fresh_plugins) -> None:
    readme = (CONTRIB / "README.md").read_text()
    code = readme.split("```python\n# my_plugin.py\n", 1)[1].split("```", 1)[0]
    entry = readme.split("[project.entry-points.nlp_envs]\n", 1)[1].split("\n", 1)[0]
    name, module = (part.strip().strip('"') for part in entry.split("="))
    assert (name, module) == ("always-first", "my_plugin")
    make_distribution(tmp_path, "my-plugin", {name: "nlp_envs_test_my_plugin"}, {"nlp_envs_test_my_plugin": code})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert nlp_agents.available()["always-first"] == "my-plugin 0.1"
    code = cli_main(
        [
            "train",
            "--agent",
            "always-first",
            "--env",
            "nlp_envs/NextWordEasy-v0",
            "--steps",
            "100",
            "--eval-episodes",
            "20",
        ]
    )
    assert code == 0 and "evaluation: always-first" in capsys.readouterr().out


def test_an_agent_name_with_control_characters_or_spaces_fails_its_plugin_by_name(
    tmp_path, monkeypatch, fresh_plugins, capsys
) -> None:
    for index, name in enumerate(["red\x1b[31m", "two words", "a/b"]):
        make_distribution(
            tmp_path,
            f"odd-name-{index}",
            {f"odd{index}": f"nlp_envs_test_odd_name{index}"},
            {f"nlp_envs_test_odd_name{index}": AGENT_PLUGIN.format(name=name)},
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    failed = {status.name: status.error for status in plugins.registry().failures()}
    assert set(failed) == {"odd0", "odd1", "odd2"}
    assert "name 'red\\x1b[31m' must be letters, digits and . _ + -" in failed["odd0"]
    assert cli_main(["agents"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "two words" in out  # named in its plugin's failure line, escaped
