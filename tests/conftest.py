"""Shared fixtures and helpers: no network, seeded generators, env ids, vector envs, plugin isolation."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session", autouse=True)
def sb3_logs_in_pytest_temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests that build SB3 models as users do: SB3 makes a ``SB3-<time>`` folder in the system temp
    dir for each model without a logger unless ``SB3_LOGDIR`` names one; keep those in pytest's."""
    before = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if before is None:
        del os.environ["SB3_LOGDIR"]
    else:
        os.environ["SB3_LOGDIR"] = before


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


def collect_transitions(
    env_id: str,
    policy: str = "oracle",
    epsilon: float = 0.0,
    vector_steps: int = 200,
    seed: int = 0,
    num_envs: int = 8,
    **env_kwargs: object,
) -> Any:
    """Logged :class:`nlp_envs.offline.Transitions` of a reference policy played on the native vector env.

    Each act is the policy's, or with probability ``epsilon`` a uniform allowed one; the NEXT_STEP
    reset step of a slot whose episode ended is no transition and is left out.
    """
    from nlp_agents.base import has_masks, random_actions
    from nlp_envs.offline import Transitions

    env = make_vec(env_id, num_envs, **env_kwargs)
    act = nlp_envs.reference_policy(env_id, policy)
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    masked, n = has_masks(env), int(env.single_action_space.n)

    def current_masks() -> np.ndarray | None:
        masks = env.unwrapped.core.action_masks() if masked else None
        return np.ones((num_envs, n), dtype=bool) if masked and masks is None else masks

    observations, _ = env.reset(seed=seed)
    masks, ended = current_masks(), np.zeros(num_envs, dtype=bool)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in ("o", "a", "r", "n", "t", "u", "m", "nm")}
    for _ in range(vector_steps):
        actions = np.where(
            rng.random(num_envs) < epsilon, random_actions(rng, n, num_envs, masks), np.asarray(act(observations, env))
        )
        next_observations, rewards, terminated, truncated, _ = env.step(actions)
        next_masks, keep = current_masks(), ~ended
        for key, value in zip(
            rows,
            (observations, actions, rewards, next_observations, terminated, truncated, masks, next_masks),
            strict=True,
        ):
            if value is not None:
                rows[key].append(np.asarray(value)[keep])
        observations, masks, ended = next_observations, next_masks, terminated | truncated
    env.close()
    joined = {key: np.concatenate(value) if value else None for key, value in rows.items()}
    return Transitions(
        observations=joined["o"],
        actions=joined["a"].astype(np.int64),
        rewards=joined["r"].astype(np.float32),
        next_observations=joined["n"],
        terminations=joined["t"].astype(bool),
        truncations=joined["u"].astype(bool),
        action_masks=joined["m"],
        next_action_masks=joined["nm"],
        env_id=env_id,
        env_kwargs=dict(env_kwargs),
        dataset_id=f"test/{env_id}/{policy}-eps{epsilon}-seed{seed}",
    )
