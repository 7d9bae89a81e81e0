"""The package works outside the source tree: built, installed from its wheel, run from elsewhere.

A module-scoped fixture copies the project (without build outputs), builds the wheels of the project
and of the plugin ``plugins/nlp-envs-sb3-contrib`` and the project's sdist, and makes a fresh venv
holding the wheels and nothing of the source tree. The venv borrows the heavy dependencies (torch,
gymnasium, SB3) from the interpreter running the tests through a folder of links, one per entry of
its site-packages *except* this project's own files (its editable-install hooks and dist-infos), so
neither the source tree's modules nor its entry points can be seen inside the venv.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = Path("plugins") / "nlp-envs-sb3-contrib"
"""The import name of the agents package (issue 12.2: the rename script sets ``nlp_agents``)."""
BUILD_TIMEOUT = 300
COMMAND_TIMEOUT = 300
SOURCE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "results", "*.egg-info", "__pycache__", ".*cache", ".hypothesis"
)
PACKAGE_DATA = [
    "nlp_envs/leaderboard/builtin_suites/smoke.toml",
    "nlp_envs/leaderboard/builtin_suites/default.toml",
    "nlp_envs/leaderboard/builtin_suites/full.toml",
    "nlp_envs/data/ontologies/bank.json",
]


@dataclass(frozen=True)
class Installed:
    """The built artefacts and the venv they are installed in."""

    wheel: Path
    sdist: Path
    plugin_wheel: Path
    python: Path
    site_packages: Path
    workdir: Path
    """A folder outside the source tree that commands run in."""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that must not see the source tree (no PYTHONPATH)."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
    env.pop("NLP_ENVS_BLOCK_PLUGINS", None)
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def check_run(command: list[str | Path], cwd: Path, **env: str) -> str:
    """Run a command with a timeout; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def is_ours(name: str) -> bool:
    """Whether a site-packages entry belongs to this project or its plugin (editable hooks included)."""
    return name.startswith(("nlp_envs", "__editable__")) or name.endswith(".pth")


def link_dependencies(target: Path) -> None:
    """Fill ``target`` with links to everything the running interpreter has installed, except our files."""
    target.mkdir()
    for packages in map(Path, site.getsitepackages()):
        for entry in sorted(packages.iterdir()):
            if not is_ours(entry.name) and not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)


def build_wheel(source: Path, out: Path) -> Path:
    """Build the wheel of the project in ``source`` into ``out`` (no isolation: setuptools is here)."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    check_run([*command, "--disable-pip-version-check", "-q", ".", "-w", out], cwd=source)
    (wheel,) = out.glob("*.whl")
    return wheel


def top_level_packages(wheel: Path) -> set[str]:
    """The top-level import names a wheel installs, read from its RECORD."""
    with zipfile.ZipFile(wheel) as archive:
        (record,) = [name for name in archive.namelist() if name.endswith(".dist-info/RECORD")]
        paths = [line.split(",")[0] for line in archive.read(record).decode().splitlines() if line]
    tops = {path.split("/")[0] for path in paths}
    return {
        top.removesuffix(".py") for top in tops if not top.endswith((".dist-info", ".data")) and top != "__pycache__"
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if os.name == "nt":
        pytest.skip("the venv borrows its dependencies through symbolic links")
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=SOURCE_IGNORE)
    wheel = build_wheel(source, base / "wheels")
    plugin_wheel = build_wheel(source / PLUGIN_DIR, base / "plugin-wheels")
    # `python -m build` is not a dependency: call setuptools' PEP 517 backend directly, as build does.
    sdist_code = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    sdist_name = check_run([sys.executable, "-c", sdist_code, base / "sdist"], cwd=source).strip().splitlines()[-1]

    venv = base / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    check_run([base_python, "-m", "venv", "--without-pip", venv], cwd=base)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(check_run([python, "-c", purelib], cwd=base).strip())
    link_dependencies(base / "dependencies")
    # A plain path line: the linked folder's own .pth files (editable hooks) are never run.
    (site_packages / "dependencies.pth").write_text(f"{base / 'dependencies'}\n")
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q"]
    check_run([*pip, "--disable-pip-version-check", wheel], cwd=base)
    workdir = base / "elsewhere"
    workdir.mkdir()
    return Installed(wheel, base / "sdist" / sdist_name, plugin_wheel, python, site_packages, workdir)


def nlp_envs_command(installed: Installed, *arguments: str) -> str:
    """Run the installed ``nlp-envs`` console script from the folder outside the source tree."""
    return check_run([installed.python.parent / "nlp-envs", *arguments], cwd=installed.workdir)


def test_wheel_installs_only_our_top_level_packages(installed: Installed) -> None:
    assert top_level_packages(installed.wheel) == {"nlp_envs", "nlp_agents"}
    assert top_level_packages(installed.plugin_wheel) == {"nlp_envs_sb3_contrib"}


def test_wheel_and_sdist_ship_the_package_data(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        assert set(PACKAGE_DATA) <= set(archive.namelist())
    with tarfile.open(installed.sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = set(archive.getnames())
    assert {f"{root}/{path}" for path in PACKAGE_DATA} <= names
    assert f"{root}/pyproject.toml" in names


def test_installed_package_is_the_wheel_not_the_source_tree(installed: Installed) -> None:
    code = (
        "import importlib.metadata as m, nlp_envs, nlp_agents\n"
        "print(nlp_envs.__file__)\n"
        "print(nlp_agents.__file__)\n"
        "for point in m.entry_points(group='nlp_envs'):\n"
        "    print(point.dist.locate_file(''), point.name)\n"
    )
    lines = check_run([installed.python, "-c", code], cwd=installed.workdir).splitlines()
    for line in lines:
        assert line.startswith(str(installed.site_packages)), f"not from the installed wheel: {line}"
    names = {line.split()[-1] for line in lines[2:]}
    assert {"random", "qtable", "dqn", "vlearner", "sb3"} <= names


def test_cli_runs_outside_the_source_tree(installed: Installed) -> None:
    assert "nlp_envs/NextWordEasy-v0" in nlp_envs_command(installed, "envs")
    nlp_envs_command(installed, "play", "nlp_envs/NextWordEasy-v0")
    bench = ["--suite", "smoke", "--agents", "random", "--seeds", "1", "--envs", "nlp_envs/NextWordEasy-v0"]
    nlp_envs_command(installed, "bench", *bench, "--db", "results.sqlite")
    assert "random" in nlp_envs_command(installed, "leaderboard", "--db", "results.sqlite")


def test_plugin_wheel_adds_its_agents(installed: Installed) -> None:
    pip = [installed.python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q"]
    check_run([*pip, "--disable-pip-version-check", installed.plugin_wheel], cwd=installed.workdir)
    code = "import nlp_envs_sb3_contrib; print(nlp_envs_sb3_contrib.__file__)"
    assert check_run([installed.python, "-c", code], cwd=installed.workdir).startswith(str(installed.site_packages))
    listing = nlp_envs_command(installed, "agents")
    assert "qrdqn" in listing and "nlp-envs-sb3-contrib" in listing
    nlp_envs_command(installed, "envs")


def test_agents_package_imports_beside_openai_agents(installed: Installed) -> None:
    # openai-agents installs a top-level package `agents`: ours must not be one, and must import beside it.
    assert "agents" not in top_level_packages(installed.wheel)
    fake = installed.workdir / "openai-agents"
    (fake / "agents").mkdir(parents=True, exist_ok=True)
    (fake / "agents" / "__init__.py").write_text("OPENAI_AGENTS = True\n")
    code = (
        "import agents, nlp_agents\n"
        "assert agents.OPENAI_AGENTS\n"
        "assert 'random' in nlp_agents.available()\n"
        "print(nlp_agents.__file__)\n"
    )
    command = [installed.python, "-c", code]
    assert check_run(command, cwd=installed.workdir, PYTHONPATH=str(fake)).startswith(str(installed.site_packages))
    listing = check_run([installed.python.parent / "nlp-envs", "agents"], cwd=installed.workdir, PYTHONPATH=str(fake))
    assert "random" in listing
