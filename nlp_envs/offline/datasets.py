"""Read logged datasets: a Minari id or a dataset folder -> :class:`~nlp_envs.offline.Transitions`.

Every way a dataset can be unusable (missing, not written by nlp-envs, collected on an env id that is
not registered here, corrupt) is one :class:`DatasetError` that names the dataset, what is wrong and
how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np

from nlp_envs.arguments import kwarg_text
from nlp_envs.offline.transitions import Transitions

METADATA_KEY = "nlp_envs"
"""The key of the nlp-envs metadata in a dataset's ``metadata.json`` (see ``collection.METADATA_FIELDS``)."""
_MINARI_PIP = "pip install 'nlp-envs[offline]' (or pip install 'minari[hdf5]>=0.5.4,<0.6')"


class DatasetError(ValueError):
    """A logged dataset that cannot be used: missing, foreign, for an unknown env, or corrupt."""


def import_minari() -> ModuleType:
    """The ``minari`` module, or a ModuleNotFoundError that gives the pip command."""
    try:
        import minari
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"logged datasets need Minari, which is not installed ({error}); {_MINARI_PIP}."
        ) from None
    return minari


def minari_dataset_dir(dataset_id: str) -> Path:
    """The folder of Minari id ``dataset_id`` in Minari's local datasets folder (``MINARI_DATASETS_PATH``)."""
    root = os.environ.get("MINARI_DATASETS_PATH") or os.path.join(os.path.expanduser("~"), ".minari", "datasets")
    return Path(root) / dataset_id


def data_dir(dataset: str | os.PathLike[str]) -> Path:
    """The ``data`` folder (with ``metadata.json``) of a Minari id, a dataset folder, its ``data`` folder or a file.

    A path that exists is taken as such; anything else as a Minari id.

    Raises:
        DatasetError: nothing is there.
    """
    given = Path(dataset)
    if given.is_file():  # a file of the dataset (its main_data.hdf5 or metadata.json)
        return given.parent
    if given.exists():
        return given if (given / "metadata.json").exists() or given.name == "data" else given / "data"
    folder = minari_dataset_dir(str(dataset))
    if not folder.exists():
        raise DatasetError(
            f"dataset {str(dataset)!r} was not found: no folder {str(given)!r} and no Minari dataset at {folder}; "
            "build it with `nlp-envs collect` (or --named), or set MINARI_DATASETS_PATH to the folder that holds it."
        )
    return folder / "data"


def dataset_hash(dataset: str | os.PathLike[str]) -> str:
    """The sha256 of a dataset's files (names and content, in name order): the same bytes, the same hash."""
    folder = data_dir(dataset)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def dataset_metadata(dataset: str | os.PathLike[str]) -> dict[str, Any]:
    """The dataset's ``metadata.json`` with the nlp-envs part checked (the env id is registered).

    Raises:
        DatasetError: missing, unreadable, not made by nlp-envs, or for an env id not registered here.
    """
    folder = data_dir(dataset)
    name = str(dataset)
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"dataset {name!r} has no metadata.json in {folder}, so it is not a Minari dataset; "
            "pass a Minari id or a folder written by `nlp-envs collect`."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"dataset {name!r} is corrupt: {folder / 'metadata.json'} cannot be read ({error}); collect it again."
        ) from None
    ours = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if ours is None and isinstance(metadata, dict) and metadata.get("author") in (["nlp-envs"], "nlp-envs"):
        # collect() writes its record last: a dataset by nlp-envs without it was cut off while being written.
        raise DatasetError(
            f"dataset {name!r} is incomplete: its collection by nlp-envs stopped before it was finished (no "
            f"{METADATA_KEY!r} record in {folder / 'metadata.json'}); delete {folder.parent} and collect it again."
        )
    if not isinstance(ours, dict) or not isinstance(ours.get("env_id"), str):
        raise DatasetError(
            f"dataset {name!r} was not made by nlp-envs (its metadata has no {METADATA_KEY!r} record), so its env, "
            "masks and reference scores are unknown; collect one with `nlp-envs collect`."
        )
    problem = _record_problem(ours)
    if problem is not None:
        raise DatasetError(
            f"dataset {name!r} is corrupt: in {folder / 'metadata.json'}, {METADATA_KEY}.{problem}; collect it again."
        )
    try:
        gym.spec(ours["env_id"])
    except gym.error.Error:
        raise DatasetError(
            f"dataset {name!r} was collected on {ours['env_id']}, which is not registered here; install the "
            "plugin that provides it (`nlp-envs envs` lists the registered ids)."
        ) from None
    _check_env_spec(name, folder, metadata)
    _check_source_files(name, ours)
    return metadata


def _check_env_spec(name: str, folder: Path, metadata: dict[str, Any]) -> None:
    """Refuse a dataset whose nlp-envs record names another env or kwargs than Minari's own ``env_spec``.

    :func:`~nlp_envs.offline.collect` writes both from the same spec, so a disagreement means the
    metadata was edited: which of the two the episodes belong to is unknown.
    """
    ours = metadata[METADATA_KEY]
    try:
        spec = json.loads(metadata["env_spec"])
    except (KeyError, TypeError, json.JSONDecodeError):  # no spec (another writer): nothing to compare
        return
    if not isinstance(spec, dict):
        return
    kwargs: dict[str, Any] = spec["kwargs"] if isinstance(spec.get("kwargs"), dict) else {}
    changed = [
        f"env_kwargs.{key}={value!r} (env_spec: {kwargs.get(key)!r})"
        for key, value in sorted((ours.get("env_kwargs") or {}).items())
        if kwarg_text(value) != kwarg_text(kwargs.get(key))
    ]
    if spec.get("id") != ours["env_id"]:
        changed.insert(0, f"env_id={ours['env_id']!r} (env_spec: {spec.get('id')!r})")
    if changed:
        raise DatasetError(
            f"dataset {name!r} is corrupt: in {folder / 'metadata.json'}, the {METADATA_KEY} record disagrees with "
            f"Minari's env_spec on {', '.join(changed)}, so the env of its episodes is unknown (the metadata was "
            "edited); collect it again."
        )


def _check_source_files(name: str, ours: dict[str, Any]) -> None:
    """Refuse a dataset whose env data files (``source_data_hashes``) were edited since it was collected.

    Its env kwargs name the same paths, so the env they make now is another task than the episodes'.
    A file that is gone is left to the env, which names it when it is built.
    """
    from nlp_envs.leaderboard.suites import file_sha256

    kwargs = ours.get("env_kwargs") or {}
    for kwarg, recorded in sorted((ours.get("source_data_hashes") or {}).items()):
        value = kwargs.get(kwarg)
        if not isinstance(value, str) or not Path(value).is_file():
            continue
        digest = file_sha256(Path(value))
        if digest != recorded:
            raise DatasetError(
                f"dataset {name!r} was collected with {kwarg}={value!r}, and that file changed since (sha256 "
                f"{digest[:16]}..., the dataset recorded {recorded[:16]}...), so its episodes are not of the env "
                "the file makes now; restore the file, or collect the dataset again."
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# The fields of the nlp-envs record that readers use, each with its check and what it must be (a
# field may be absent: files of other writers; where present, a wrong type is corruption, never guessed).
_RECORD_CHECKS: dict[str, tuple[Any, str]] = {
    "env_kwargs": (lambda value: value is None or isinstance(value, dict), "an object of env keyword arguments"),
    "episodes": (lambda value: _is_count(value, 1), "an integer >= 1"),
    "eval_episodes": (lambda value: _is_count(value, 1), "an integer >= 1"),
    "eval_seed": (lambda value: _is_count(value, 0), "an integer >= 0"),
    "epsilon": (lambda value: value is None or (_is_number(value) and 0 <= value <= 1), "a number from 0 to 1"),
    "behaviour_return": (_is_number, "a finite number"),
    "behaviour_normalized_score": (lambda value: value is None or _is_number(value), "a finite number or null"),
    "source_data_hashes": (
        lambda value: isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
        "an object of {env kwarg: sha256}",
    ),
}


def _record_problem(ours: dict[str, Any]) -> str | None:
    """What is wrong with the nlp-envs record's fields (``"episodes is '20', expected ..."``); None if nothing."""
    for key, (check, expected) in _RECORD_CHECKS.items():
        if key in ours and not check(ours[key]):
            return f"{key} is {ours[key]!r}, expected {expected}"
    return None


def load_transitions(dataset: str | os.PathLike[str]) -> Transitions:
    """The transitions of a dataset written by :func:`~nlp_envs.offline.collect`, flat over its episodes.

    ``next_observations`` come from each episode's observations (the last one is the final
    observation); ``action_masks``/``next_action_masks`` from the ``action_mask`` infos (None on a
    task without masks). The env is given by the dataset's metadata.

    Args:
        dataset: a Minari id (looked up in ``MINARI_DATASETS_PATH``) or the path of a dataset folder.

    Returns:
        The :class:`Transitions`, with ``dataset_hash`` the sha256 of the dataset's files.

    Raises:
        DatasetError: the dataset is missing, foreign, for an unregistered env, or corrupt.
    """
    minari = import_minari()
    metadata = dataset_metadata(dataset)
    ours = metadata[METADATA_KEY]
    name = str(dataset)
    folder = data_dir(dataset)
    try:
        data = minari.MinariDataset(folder)
        episodes = list(data.iterate_episodes())
    except Exception as error:  # h5py and Minari raise many kinds (OSError, KeyError, AssertionError, ...)
        raise DatasetError(
            f"dataset {name!r} is corrupt: Minari cannot read {folder} ({type(error).__name__}: {error}); "
            "collect it again."
        ) from None
    expected = ours.get("episodes")
    if not episodes or (expected is not None and len(episodes) != expected):
        raise DatasetError(
            f"dataset {name!r} is corrupt: it holds {len(episodes)} episodes, its metadata says {expected}; "
            "collect it again."
        )
    parts: dict[str, list[np.ndarray]] = {
        key: [] for key in ("obs", "next", "act", "rew", "term", "trunc", "mask", "next_mask")
    }
    for episode in episodes:
        _check_episode(name, episode, data.action_space)
        parts["obs"].append(episode.observations[:-1])
        parts["next"].append(episode.observations[1:])
        parts["act"].append(episode.actions)
        parts["rew"].append(episode.rewards)
        parts["term"].append(episode.terminations)
        parts["trunc"].append(episode.truncations)
        masks = episode.infos.get("action_mask") if isinstance(episode.infos, dict) else None
        if masks is not None:
            parts["mask"].append(masks[:-1])
            parts["next_mask"].append(masks[1:])
    if parts["mask"] and len(parts["mask"]) != len(episodes):
        raise DatasetError(f"dataset {name!r} is corrupt: only some episodes have action masks; collect it again.")
    masked = bool(parts["mask"])
    return Transitions(
        observations=np.concatenate(parts["obs"]),
        actions=np.concatenate(parts["act"]).astype(np.int64),
        rewards=np.concatenate(parts["rew"]).astype(np.float32),
        next_observations=np.concatenate(parts["next"]),
        terminations=np.concatenate(parts["term"]).astype(bool),
        truncations=np.concatenate(parts["trunc"]).astype(bool),
        action_masks=np.concatenate(parts["mask"]).astype(bool) if masked else None,
        next_action_masks=np.concatenate(parts["next_mask"]).astype(bool) if masked else None,
        env_id=ours["env_id"],
        env_kwargs=dict(ours.get("env_kwargs") or {}),
        dataset_id=str(metadata.get("dataset_id") or name),
        dataset_hash=dataset_hash(dataset),
    )


def _check_episode(name: str, episode: Any, action_space: gym.Space) -> None:
    """Refuse an episode whose arrays disagree in length or whose acts leave the action space."""
    steps = len(episode.actions)
    lengths = {len(episode.rewards), len(episode.terminations), len(episode.truncations)}
    masks = episode.infos.get("action_mask") if isinstance(episode.infos, dict) else None
    n = getattr(action_space, "n", None)
    problem = None
    if steps < 1 or lengths != {steps} or len(episode.observations) != steps + 1:
        problem = "its arrays disagree in length"
    elif n is not None and not np.all((episode.actions >= 0) & (episode.actions < n)):
        problem = f"an act is outside the action space Discrete({n})"
    elif masks is not None and np.shape(masks) != (steps + 1, n):
        problem = f"its action masks have shape {np.shape(masks)}, expected {(steps + 1, n)}"
    if problem is not None:
        raise DatasetError(f"dataset {name!r} is corrupt: episode {episode.id} {problem}; collect it again.")
