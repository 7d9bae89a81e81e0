"""Shared fixtures and helpers: no network, seeded generators, env ids, vector envs, plugin isolation."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
from nlp_agents import plugins as agent_plugins
from nlp_envs import plugins as env_plugins

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "plugins" / "nlp-envs-sb3-contrib"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to open a network connection: data must load offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in the nlp-envs test suite")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


ENV_IDS = nlp_envs.env_ids()


def make_vec(env_id: str, num_envs: int = 4, **kwargs: object) -> gym.vector.VectorEnv:
    """The native vector env of ``env_id`` (its vector entry point), with env keyword arguments."""
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


@pytest.fixture(scope="session")
def contrib_installed() -> None:
    """The separate plugin package, installed as a user would (pip), if the set-up has not done it yet."""
    try:
        metadata.distribution("nlp-envs-sb3-contrib")
    except metadata.PackageNotFoundError:
        if importlib.util.find_spec("sb3_contrib") is None:
            pytest.skip("sb3-contrib is not installed; run: pip install 'sb3-contrib>=2.3'")
        # As a user would; without build isolation where setuptools is at hand (no download needed).
        isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation, str(CONTRIB)]
        subprocess.run(command, check=True)
        importlib.invalidate_caches()
    agent_plugins.reset()


@pytest.fixture
def fresh_plugins():
    """Fresh plugin registries for the test, and again after it (so no test sees another's plugins)."""
    agent_plugins.reset()
    env_plugins.reset()
    yield
    agent_plugins.reset()
    env_plugins.reset()


def make_distribution(
    root: Path,
    name: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    version: str = "0.1",
    group: str = "nlp_envs",
) -> None:
    """Write an installed-looking distribution (a .dist-info folder and its modules) under ``root``.

    ``group`` is ``"nlp_envs"`` for agent plugins, ``"nlp_envs.envs"`` for env plugins.
    """
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    for module, code in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(code))
