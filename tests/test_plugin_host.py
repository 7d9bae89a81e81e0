"""The plugin hosts: every plugin failure contained and named, and the env side free of agents and torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nlp_agents
from nlp_agents import plugins
from nlp_envs import plugins as env_plugins
from nlp_envs.cli import main as cli_main
from tests.conftest import make_distribution
from tests.test_agents_plugins import AGENT_PLUGIN, BUILTINS, ENV_PLUGIN

ROOT = Path(__file__).resolve().parents[1]
TINY = "nlp_envs_test/TinyNextWord-v0"


def run_python(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees this checkout and the fake distributions in ``paths``."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT)])}
    environment.pop(plugins.BLOCK_VARIABLE, None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=environment, cwd=ROOT
    )


IMPORT_AND_MAKE = (
    "import warnings, gymnasium as gym\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    import nlp_envs\n"
    f"env = gym.make({TINY!r})\n"
    "env.reset(seed=0)\n"
    "print('MADE', env.observation_space)\n"
    "for w in caught: print('WARNING', w.message)\n"
)


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "MemoryError('plugin')"])
def test_env_plugin_raising_any_base_exception_at_import_is_contained(tmp_path, raised) -> None:
    make_distribution(tmp_path, "env-plugin", {"tiny-envs": "t_envs"}, {"t_envs": ENV_PLUGIN}, group="nlp_envs.envs")
    make_distribution(
        tmp_path, "killer-plugin", {"killer": "t_killer"}, {"t_killer": f"raise {raised}\n"}, group="nlp_envs.envs"
    )
    result = run_python(IMPORT_AND_MAKE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MADE MultiDiscrete([9 4])" in result.stdout
    exception = raised.split("(")[0]
    warning = [line for line in result.stdout.splitlines() if "killer" in line]
    assert len(warning) == 1, result.stdout
    assert "plugin 'killer' from killer-plugin was not loaded: import failed: " + exception in warning[0]
    assert "t_killer" in warning[0]  # the entry point's target


def test_env_plugin_raising_system_exit_in_its_hook_is_contained(tmp_path) -> None:
    make_distribution(tmp_path, "env-plugin", {"tiny-envs": "t_envs"}, {"t_envs": ENV_PLUGIN}, group="nlp_envs.envs")
    hook = (
        "from nlp_envs.plugins import hookimpl\n"
        "@hookimpl\n"
        "def register_envs(register):\n"
        "    raise SystemExit('bye from register_envs')\n"
    )
    make_distribution(tmp_path, "exit-plugin", {"exiter": "t_exiter"}, {"t_exiter": hook}, group="nlp_envs.envs")
    result = run_python(IMPORT_AND_MAKE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MADE" in result.stdout
    assert "plugin 'exiter' from exit-plugin was not loaded: register_envs failed: SystemExit: bye" in result.stdout


@pytest.mark.parametrize("where", ["import", "hook"])
def test_agent_plugin_raising_keyboard_interrupt_is_contained(tmp_path, monkeypatch, fresh_plugins, where) -> None:
    code = (
        "raise KeyboardInterrupt('at import')\n"
        if where == "import"
        else "from nlp_agents import hookimpl\n"
        "@hookimpl\n"
        "def register_agents(register):\n"
        "    raise KeyboardInterrupt('in hook')\n"
    )
    make_distribution(tmp_path, "ctrl-c-plugin", {"ctrlc": "t_ctrlc"}, {"t_ctrlc": code})
    make_distribution(tmp_path, "good-plugin", {"good": "t_good"}, {"t_good": AGENT_PLUGIN.format(name="echo9")})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"echo9", *BUILTINS} <= set(nlp_agents.available())
    (failed,) = plugins.registry().failures()
    assert (failed.name, failed.distribution) == ("ctrlc", "ctrl-c-plugin")
    assert "KeyboardInterrupt" in failed.error


def test_env_plugin_with_a_broken_entry_point_does_not_empty_the_env_list(
    tmp_path, monkeypatch, fresh_plugins, capsys
) -> None:
    good, broken = "nlp_envs/PluginTiny-v0", "nlp_envs/PluginBroken-v0"  # listed ids are in nlp_envs/
    broken_env = ENV_PLUGIN.replace(TINY, broken).replace(
        '"nlp_envs.next_word:NextWordEnv"', '"nlp_envs_test_nowhere:Env"'
    )
    make_distribution(
        tmp_path,
        "env-plugin",
        {"tiny-envs": "t_envs2"},
        {"t_envs2": ENV_PLUGIN.replace(TINY, good)},
        group="nlp_envs.envs",
    )
    make_distribution(
        tmp_path, "broken-env", {"broken-env": "t_broken_env"}, {"t_broken_env": broken_env}, group="nlp_envs.envs"
    )
    # An entry point whose target is not even a module path.
    make_distribution(tmp_path, "bad-target", {"bad-target": "no such module:x"}, {}, group="nlp_envs.envs")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gymnasium as gym

    try:
        with pytest.warns(env_plugins.PluginWarning, match="'bad-target' from bad-target was not loaded"):
            added = env_plugins.register_plugin_envs()
        assert sorted(added) == [broken, good]
        assert cli_main(["envs"]) == 2  # an env that cannot be built is listed, and the command says so
        captured = capsys.readouterr()
        assert "nlp_envs/NextWord-v0\n" in captured.out and f"{good}\n  observation" in captured.out
        assert f"{broken}\n  cannot be built: ModuleNotFoundError" in captured.out
        assert "plugin 'bad-target' from bad-target 0.1 was not loaded" in captured.err
    finally:
        for env_id in (good, broken):
            gym.registry.pop(env_id, None)
            env_plugins._ENV_OWNERS.pop(env_id, None)


def env_plugin_point(name: str, *specs: dict[str, object]) -> object:
    """An entry point as the host reads it, whose env plugin registers the env ``specs`` in turn."""

    class Plugin:
        @env_plugins.hookimpl
        def register_envs(self, register):
            for spec in specs:
                register(**spec)

    class Point:
        value, dist = "t:Plugin", None

        def load(self):
            return Plugin()

    point = Point()
    point.name = name  # type: ignore[attr-defined]
    return point


def test_env_spec_that_gym_make_could_never_build_is_refused_at_registration(fresh_plugins) -> None:
    point = env_plugin_point("no-entry", {"id": "nlp_envs_test/NoEntry-v0", "entry_point": "not-a-module-attribute"})
    (status,) = env_plugins.load_env_plugins([point]).plugins
    assert status.status == "failed"
    assert "entry_point='not-a-module-attribute' must be 'module:attribute'" in status.error


def test_unreadable_entry_point_metadata_is_named_and_the_rest_loads(tmp_path) -> None:
    make_distribution(tmp_path, "env-plugin", {"tiny-envs": "t_envs3"}, {"t_envs3": ENV_PLUGIN}, group="nlp_envs.envs")
    info = tmp_path / "mangled-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mangled\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nlp_envs.envs]\nfoo\n= bar\n")
    result = run_python(IMPORT_AND_MAKE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MADE" in result.stdout
    assert "from mangled was not loaded: its entry_points.txt cannot be read" in result.stdout


def test_one_distribution_may_provide_envs_and_agents(tmp_path, monkeypatch, fresh_plugins) -> None:
    both = ENV_PLUGIN + AGENT_PLUGIN.format(name="dual-agent").replace("from nlp_agents import hookimpl", "")
    info = tmp_path / "dual-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dual\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nlp_envs]\ndual = t_dual\n[nlp_envs.envs]\ndual = t_dual\n")
    (tmp_path / "t_dual.py").write_text(__import__("textwrap").dedent(both))
    monkeypatch.syspath_prepend(str(tmp_path))
    import gymnasium as gym

    try:
        assert env_plugins.register_plugin_envs() == [TINY]
        assert nlp_agents.available()["dual-agent"] == "dual 0.1"
        (row,) = [row for row in plugins.describe() if row["plugin"] == "dual"]
        assert row["status"] == "ok"  # in both groups: no note
    finally:
        gym.registry.pop(TINY, None)
        env_plugins._ENV_OWNERS.pop(TINY, None)


def test_register_envs_in_the_agent_group_only_is_noted_not_lost_silently(tmp_path, monkeypatch, fresh_plugins) -> None:
    make_distribution(tmp_path, "old-env-plugin", {"old-envs": "t_old_envs"}, {"t_old_envs": ENV_PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path))
    (row,) = [row for row in plugins.describe() if row["plugin"] == "old-envs"]
    assert "declare the module in the 'nlp_envs.envs' entry-point group" in row["status"]
    assert env_plugins.register_plugin_envs() == []  # the agent group is never read by the env side


LAYERS = """
import json, sys
import gymnasium as gym
import nlp_envs
after_import = sorted(sys.modules)
env = gym.make("nlp_envs/NextWord-v0")
env.reset(seed=0)
for _ in range(3):
    env.step(env.action_space.sample())
vector = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=2, vectorization_mode="vector_entry_point")
vector.reset(seed=0)
vector.step(vector.action_space.sample())
print(json.dumps({"import": after_import, "make": sorted(sys.modules)}))
"""


def test_the_env_side_loads_no_agent_module_no_torch_and_no_sb3() -> None:
    result = run_python(LAYERS)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    for stage, modules in loaded.items():
        roots = {name.split(".")[0] for name in modules}
        assert not roots & {"nlp_agents", "torch", "stable_baselines3", "sb3_contrib", "nlp_envs_sb3_contrib"}, stage
        assert not {"nlp_envs.leaderboard", "nlp_envs.cli"} & set(modules), stage


def test_a_plugin_that_fails_on_its_second_env_is_said_to_be_loaded_in_part(fresh_plugins) -> None:
    good = {"id": "nlp_envs_test/PartOk-v0", "entry_point": "nlp_envs.next_word:NextWordEnv"}
    shadow = {"id": "nlp_envs/NextWord-v7", "entry_point": "nlp_envs.next_word:NextWordEnv"}
    registry = env_plugins.load_env_plugins([env_plugin_point("part", good, shadow)])
    try:
        with pytest.warns(env_plugins.PluginWarning) as caught:
            assert env_plugins.register_plugin_envs(registry) == [good["id"]]
        (message,) = [str(warning.message) for warning in caught]
        assert (
            "plugin 'part' from (unknown distribution) was loaded in part "
            "(its envs nlp_envs_test/PartOk-v0 are registered): " in message
        )
        assert "was not loaded" not in message and "another version of the built-in" in message
    finally:
        import gymnasium as gym

        gym.registry.pop(good["id"], None)
        env_plugins._ENV_OWNERS.pop(good["id"], None)
