"""The named logged datasets: definitions in ``named_datasets.toml``, built on demand by :func:`build_named`.

The file defines datasets (not data): each ``[[dataset]]`` entry gives the Minari id, the env, the
behaviour policy, the rate of random acts, the episodes, the seed and the vector slots, so a build
is deterministic: the same entry gives a dataset with the same bytes, in any folder. Seeds start
at or above ``collection.HELD_OUT_SEEDS``, so no named dataset holds an evaluation episode.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlp_envs.offline.collection import DEFAULT_NUM_ENVS, ProgressCallback, collect

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    import minari

NAMED_DATASETS_FILE = Path(__file__).with_name("named_datasets.toml")
_FIELDS = {"id", "env", "policy", "epsilon", "episodes", "seed", "num_envs", "env_kwargs", "description"}


@dataclass(frozen=True)
class NamedDataset:
    """One entry of ``named_datasets.toml``: the arguments of :func:`~nlp_envs.offline.collect`.

    Attributes:
        id: the Minari id, ``nlp_envs/<name>-vN``.
        env_id: the env the data is collected on.
        policy: the behaviour policy (a reference-policy name).
        epsilon: the rate of uniformly random allowed acts.
        episodes: how many episodes.
        seed: the seed of episode 0.
        num_envs: vector slots (part of what makes the acts reproducible).
        env_kwargs: the env's keyword arguments.
        description: what the data stands for.
    """

    id: str
    env_id: str
    policy: str
    epsilon: float
    episodes: int
    seed: int
    num_envs: int = DEFAULT_NUM_ENVS
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def named_datasets() -> dict[str, NamedDataset]:
    """The named datasets by Minari id, in file order.

    Raises:
        ValueError: the definitions file has an entry with missing, unknown or ill-typed fields.
    """
    return dict(_read(NAMED_DATASETS_FILE))


def build_named(
    name: str, *, progress: ProgressCallback | None = None, description: str | None = None
) -> minari.MinariDataset:
    """Collect the named dataset ``name`` into Minari's local folder (``MINARI_DATASETS_PATH``).

    Args:
        name: a Minari id from :func:`named_datasets`.
        progress: called as ``progress(episodes_done, episodes)``.
        description: overrides the entry's description.

    Returns:
        The written ``minari.MinariDataset``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        DatasetError: the dataset exists already.
    """
    named = named_datasets()
    if name not in named:
        raise KeyError(f"no named dataset {name!r}; the named datasets are {', '.join(named)}.")
    entry = named[name]
    return collect(
        entry.env_id,
        entry.policy,
        epsilon=entry.epsilon,
        episodes=entry.episodes,
        seed=entry.seed,
        dataset_id=entry.id,
        num_envs=entry.num_envs,
        env_kwargs=entry.env_kwargs,
        progress=progress,
        description=description or entry.description or None,
    )


@cache
def _read(path: Path) -> tuple[tuple[str, NamedDataset], ...]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = data.get("dataset", [])
    named: list[tuple[str, NamedDataset]] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path.name}: dataset entry {number}"
        unknown = set(entry) - _FIELDS
        missing = {"id", "env", "policy", "epsilon", "episodes", "seed"} - set(entry)
        if unknown or missing:
            raise ValueError(f"{where} has unknown fields {sorted(unknown)} or misses {sorted(missing)}.")
        named.append(
            (
                entry["id"],
                NamedDataset(
                    id=entry["id"],
                    env_id=entry["env"],
                    policy=entry["policy"],
                    epsilon=entry["epsilon"],
                    episodes=entry["episodes"],
                    seed=entry["seed"],
                    num_envs=entry.get("num_envs", DEFAULT_NUM_ENVS),
                    env_kwargs=dict(entry.get("env_kwargs", {})),
                    description=entry.get("description", ""),
                ),
            )
        )
    return tuple(named)
