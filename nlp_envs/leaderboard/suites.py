"""Leaderboard suites: TOML files naming envs, agents with hyper-parameters, seeds and budgets.

A suite file looks like this (every key but ``envs`` and ``agents`` has a default)::

    name = "smoke"
    seeds = 2             # seeds 0 .. seeds-1
    steps = 2000          # training env steps per cell
    num_envs = 8          # width of the training vector env
    eval_episodes = 50    # held-out evaluation episodes per cell
    curve_points = 4      # evaluations along training, for the learning curve
    curve_episodes = 20   # episodes per learning-curve point

    [[envs]]
    id = "nlp_envs/NextWordEasy-v0"
    kwargs = {split = "train"}       # training env
    eval_kwargs = {split = "test"}   # merged over kwargs for evaluation (held-out data)
    steps = 5000                     # optional: overrides the suite's budget for this env

    [agents.qtable]                  # agent name -> hyper-parameters
    learning_rate = 0.5

Named suites live in ``benchmarks/suites/NAME.toml`` of the source tree (or of the working
directory); any other path to a ``.toml`` file works too.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SUITE_DIRS = (Path(__file__).resolve().parents[2] / "benchmarks" / "suites", Path.cwd() / "benchmarks" / "suites")
_SUITE_KEYS = {"name", "description", "seeds", "steps", "num_envs", "eval_episodes", "curve_points", "curve_episodes"}
_ENV_KEYS = {"id", "kwargs", "eval_kwargs", "steps"}


class SuiteError(ValueError):
    """A suite file that is missing or malformed; the message names the file and key."""


@dataclass(frozen=True)
class EnvEntry:
    """One env of a suite: its id, training kwargs, evaluation kwargs and training budget."""

    id: str
    kwargs: dict[str, Any]
    eval_kwargs: dict[str, Any]
    steps: int
    name: str = ""


@dataclass(frozen=True)
class Cell:
    """One unit of work: train ``agent`` on ``env`` with ``seed``, then evaluate it."""

    suite: str
    agent: str
    hyperparams: dict[str, Any]
    env: EnvEntry
    seed: int
    num_envs: int
    eval_episodes: int
    curve_points: int
    curve_episodes: int
    device: str

    @property
    def config(self) -> dict[str, Any]:
        """Everything besides the key that decides the cell's result (the device does not)."""
        return {
            "hyperparams": self.hyperparams,
            "env_kwargs": self.env.kwargs,
            "eval_kwargs": self.env.eval_kwargs,
            "steps": self.env.steps,
            "num_envs": self.num_envs,
            "eval_episodes": self.eval_episodes,
            "curve_points": self.curve_points,
            "curve_episodes": self.curve_episodes,
        }

    @property
    def config_hash(self) -> str:
        """A short hash of :attr:`config`: a changed config is a new cell, not a finished one."""
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        """The cell's identity in the results database."""
        return (self.suite, self.agent, self.env.id, self.seed, self.config_hash)


@dataclass(frozen=True)
class Suite:
    """A parsed suite file."""

    name: str
    path: Path
    envs: tuple[EnvEntry, ...]
    agents: dict[str, dict[str, Any]]
    seeds: int = 3
    num_envs: int = 8
    eval_episodes: int = 100
    curve_points: int = 5
    curve_episodes: int = 20
    description: str = ""

    def cells(
        self,
        *,
        agents: list[str] | None = None,
        envs: list[str] | None = None,
        seeds: int | None = None,
        device: str = "auto",
    ) -> list[Cell]:
        """The suite's cells, optionally narrowed to some agents, envs (ids) and fewer or more seeds."""
        chosen_agents = self._select("agent", list(self.agents), agents)
        chosen_envs = self._select("env", [env.id for env in self.envs], envs)
        count = self.seeds if seeds is None else seeds
        if count < 1:
            raise SuiteError(f"--seeds must be >= 1, got {count}.")
        return [
            Cell(
                self.name,
                agent,
                self.agents[agent],
                env,
                seed,
                self.num_envs,
                self.eval_episodes,
                self.curve_points,
                self.curve_episodes,
                device,
            )
            for env in self.envs
            if env.id in chosen_envs
            for agent in chosen_agents
            for seed in range(count)
        ]

    def _select(self, kind: str, known: list[str], wanted: list[str] | None) -> list[str]:
        if not wanted:
            return known
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise SuiteError(f"suite {self.name!r} has no {kind} {unknown[0]!r}; its {kind}s are {known}.")
        return [name for name in known if name in wanted]


def find_suite(name_or_path: str) -> Path:
    """The file of a named suite (``benchmarks/suites/NAME.toml``) or a given ``.toml`` path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise SuiteError(f"suite file {str(path)!r} does not exist.")
        return path
    for folder in SUITE_DIRS:
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({file.stem for folder in SUITE_DIRS if folder.is_dir() for file in folder.glob("*.toml")})
    raise SuiteError(f"no suite named {name_or_path!r}; known suites: {known}, or give the path of a .toml file.")


def load_suite(name_or_path: str) -> Suite:
    """Parse and check a suite file."""
    path = find_suite(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SuiteError(f"suite file {str(path)!r} is not valid TOML: {error}") from None
    unknown = set(data) - _SUITE_KEYS - {"envs", "agents"}
    if unknown:
        raise SuiteError(
            f"suite file {str(path)!r}: unknown key {sorted(unknown)[0]!r}; known keys: {sorted(_SUITE_KEYS)}."
        )
    name = str(data.get("name", path.stem))
    steps = _positive_int(path, "steps", data.get("steps", 10_000))
    envs = []
    for number, entry in enumerate(_list_of_tables(path, data, "envs"), start=1):
        if "id" not in entry:
            raise SuiteError(f"suite file {str(path)!r}: envs entry {number} has no 'id'.")
        extra = set(entry) - _ENV_KEYS
        if extra:
            raise SuiteError(f"suite file {str(path)!r}: envs entry {number} has unknown key {sorted(extra)[0]!r}.")
        envs.append(
            EnvEntry(
                id=str(entry["id"]),
                kwargs=dict(entry.get("kwargs", {})),
                eval_kwargs=dict(entry.get("kwargs", {})) | dict(entry.get("eval_kwargs", {})),
                steps=_positive_int(path, f"envs[{number}].steps", entry.get("steps", steps)),
            )
        )
    agents = data.get("agents")
    if not isinstance(agents, dict) or not agents:
        raise SuiteError(f"suite file {str(path)!r} needs an [agents.NAME] table for at least one agent.")
    return Suite(
        name=name,
        path=path,
        envs=tuple(envs),
        agents={str(agent): dict(hyperparams) for agent, hyperparams in agents.items()},
        seeds=_positive_int(path, "seeds", data.get("seeds", 3)),
        num_envs=_positive_int(path, "num_envs", data.get("num_envs", 8)),
        eval_episodes=_positive_int(path, "eval_episodes", data.get("eval_episodes", 100)),
        curve_points=_positive_int(path, "curve_points", data.get("curve_points", 5)),
        curve_episodes=_positive_int(path, "curve_episodes", data.get("curve_episodes", 20)),
        description=str(data.get("description", "")),
    )


def _positive_int(path: Path, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SuiteError(f"suite file {str(path)!r}: {key} must be a positive integer, got {value!r}.")
    return value


def _list_of_tables(path: Path, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = data.get(key)
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise SuiteError(f"suite file {str(path)!r} needs at least one [[{key}]] table.")
    return entries
