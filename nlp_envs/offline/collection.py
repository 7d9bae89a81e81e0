"""Collect logged data: a behaviour policy, mixed with random acts, played into a Minari dataset.

Which episodes a dataset holds (the seeding rule): episode ``k`` (``k = 0 .. episodes - 1``) is the
first episode of a vector slot reset with seed ``seed + k``, exactly as episode ``k`` of
``nlp_envs.evaluate(..., seed=seed)``; so every episode can be replayed alone with
``gym.make(env_id, **env_kwargs).reset(seed=seed + k)`` and the logged actions. The ``num_envs``
slots of one native vector env play episodes ``0 .. num_envs - 1`` first; a slot whose episode
ends takes the next episode number at once. The acts depend on the policy, the seed and
``num_envs`` (the policy sees every slot's observation at each step), so a dataset is reproduced
by the same ``(env_id, env_kwargs, policy, epsilon, episodes, seed, num_envs)``, all of which its
metadata records.

Seeds ``0 .. 99`` are the leaderboard's held-out evaluation episodes (and those the reference
scores are measured on): collect with a seed of at least :data:`HELD_OUT_SEEDS` so that a dataset
never holds them (the named datasets do).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from nlp_envs.core import Policy, allowed_acts, check_int
from nlp_envs.evaluation import agent_policy, evaluate
from nlp_envs.offline.datasets import METADATA_KEY, DatasetError, import_minari, minari_dataset_dir
from nlp_envs.policies import reference_policies

if TYPE_CHECKING:
    import minari

DEFAULT_NUM_ENVS = 64
"""Vector slots of a collection (more slots: fewer Python steps per transition)."""
EVAL_EPISODES = 100
"""Evaluation episodes of the reference scores: those of ``nlp_envs.evaluate``'s default and the leaderboard's."""
EVAL_SEED = 0
"""Seed of evaluation episode 0 (the leaderboard's final evaluation block starts there)."""
HELD_OUT_SEEDS = 2 * 2**17
"""Slot seeds below this are the leaderboard's evaluation blocks; datasets should start at or above it."""
MAX_SLOT_SEED = 2**32 - 1
"""Slot seeds are 32-bit, as everywhere in the project."""

ProgressCallback = Callable[[int, int], None]


class EpsilonPolicy:
    """``policy(observations, env)`` that replaces each act, with probability ``epsilon``, by a random allowed one.

    The random act is uniform over the slot's allowed acts (all acts on a task without masks, and
    in a slot that allows none), as the ``random`` reference policy acts. Coins and random acts
    come from ``rng`` only, drawn for every slot at every step, so the stream is reproducible.

    Args:
        policy: the behaviour policy, ``policy(observations, env) -> actions``.
        epsilon: the rate of random acts, in ``[0, 1]``.
        rng: the generator of the coins and the random acts.
    """

    def __init__(self, policy: Policy, epsilon: float, rng: np.random.Generator) -> None:
        self.policy, self.epsilon, self.rng = policy, epsilon, rng

    def __call__(self, observations: np.ndarray, env: Any) -> np.ndarray:
        """The batch of acts for ``observations`` (one per slot of ``env``)."""
        actions = np.asarray(self.policy(observations, env), dtype=np.int64)
        n_actions = int(env.single_action_space.n)
        explore = self.rng.random(len(actions)) < self.epsilon
        scores = self.rng.random((len(actions), n_actions))
        masks = env.unwrapped.core.action_masks()
        if masks is not None:
            scores = np.where(allowed_acts(masks), scores, -1.0)
        return np.where(explore, scores.argmax(axis=1), actions)


@dataclasses.dataclass(frozen=True)
class _Episode:
    """One logged episode: ``n + 1`` observations and masks, ``n`` acts, rewards and end flags."""

    observations: np.ndarray
    masks: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray


def default_dataset_id(env_id: str, policy: str | os.PathLike[str], epsilon: float, seed: int) -> str:
    """``nlp_envs/<env name>-<policy>-eps<percent>-seed<seed>-v0``, e.g. ``nlp_envs/Dialogue-rule-eps30-seed0-v0``.

    The env name is the id without namespace and version; an agent file counts as policy ``agent``.
    """
    name = gym.spec(env_id).name
    label = "agent" if _is_agent_file(env_id, policy) else str(policy)
    percent = f"{epsilon * 100:g}".replace(".", "p")
    return f"nlp_envs/{name}-{label}-eps{percent}-seed{seed}-v0"


def collect(
    env_id: str,
    policy: str | os.PathLike[str],
    *,
    epsilon: float,
    episodes: int,
    seed: int,
    dataset_id: str | None = None,
    num_envs: int = DEFAULT_NUM_ENVS,
    env_kwargs: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    eval_episodes: int = EVAL_EPISODES,
    eval_seed: int = EVAL_SEED,
    description: str | None = None,
) -> minari.MinariDataset:
    """Play ``policy`` mixed with random acts for ``episodes`` episodes and write them as a Minari dataset.

    The dataset goes into Minari's local folder (``MINARI_DATASETS_PATH``, else ``~/.minari/datasets``)
    with Minari's own writer, so ``minari.load_dataset(dataset_id)`` reads it and
    ``recover_environment()`` builds ``gym.make(env_id, **env_kwargs)``. Each step's ``infos`` hold
    ``action_mask`` (the acts allowed in that observation, on tasks that mask acts). Which episodes
    are collected is the module's seeding rule. The metadata holds Minari's ``ref_min_score`` and
    ``ref_max_score`` (the ``random`` and ``oracle`` mean returns on the evaluation episodes, so
    ``minari.get_normalized_score`` is ``nlp_envs.evaluation.normalized_score``) and, under the key
    ``"nlp_envs"``, everything that reproduces and scores the dataset (see :data:`METADATA_FIELDS`).

    Args:
        env_id: a registered nlp-envs id (it needs a native vector env).
        policy: a reference-policy name of ``env_id`` (``nlp-envs envs`` lists them) or the path of a
            saved agent (``agent.save(path)``), which acts greedily, given the action masks.
        epsilon: the rate of uniformly random allowed acts, in ``[0, 1]``.
        episodes: how many episodes, at least 1.
        seed: the seed of episode 0 (episode ``k`` has slot seed ``seed + k``).
        dataset_id: a Minari id ``namespace/name-vN``; default :func:`default_dataset_id`.
        num_envs: vector slots played at once.
        env_kwargs: keyword arguments of the env (as for ``gym.make``).
        progress: called as ``progress(episodes_done, episodes)``: with 0 when the first episodes start,
            then each time episodes end; from the first call to the last is the collection time.
        eval_episodes: how many evaluation episodes the reference scores are measured on.
        eval_seed: the seed of evaluation episode 0.
        description: the dataset's description (default: one generated from the arguments).

    Returns:
        The written ``minari.MinariDataset``.

    Raises:
        ValueError: a bad argument (the message names it and says what is expected).
        DatasetError: a dataset with this id exists already.
    """
    minari_module = import_minari()
    kwargs = dict(env_kwargs or {})
    epsilon = _check_epsilon(epsilon)
    episodes = check_int("collect", "episodes", episodes, 1, fix="pass the number of episodes to collect")
    seed = check_int("collect", "seed", seed, 0, MAX_SLOT_SEED - episodes + 1, fix="slot seeds seed + k are 32-bit")
    num_envs = check_int("collect", "num_envs", num_envs, 1, fix="pass the number of vector slots, e.g. 64")
    eval_episodes = check_int("collect", "eval_episodes", eval_episodes, 1)
    eval_seed = check_int("collect", "eval_seed", eval_seed, 0, MAX_SLOT_SEED - eval_episodes + 1)
    spec = _collectable_spec(env_id, kwargs)
    dataset_id = default_dataset_id(env_id, policy, epsilon, seed) if dataset_id is None else dataset_id
    folder = _new_dataset_dir(dataset_id)

    env = gym.make_vec(
        env_id,
        num_envs=min(num_envs, episodes),
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.DISABLED,
        **kwargs,
    )
    try:
        base, described = _behaviour_policy(env_id, policy, kwargs)
        logs = _play(env, EpsilonPolicy(base, epsilon, np.random.default_rng(seed)), episodes, seed, progress)
    finally:
        env.close()

    overlap = seed < eval_seed + eval_episodes and eval_seed < seed + episodes
    if overlap:
        warnings.warn(
            f"collect: episodes seeded {seed} .. {seed + episodes - 1} include evaluation episodes "
            f"{eval_seed} .. {eval_seed + eval_episodes - 1}, so an agent trained on this dataset is scored on "
            f"episodes it has seen; use a seed >= {HELD_OUT_SEEDS} for a held-out evaluation.",
            UserWarning,
            stacklevel=2,
        )
    # One evaluation gives the behaviour policy's return and both references on the same episodes;
    # its random acts there come from a generator seeded with eval_seed.
    scored = evaluate(
        env_id,
        EpsilonPolicy(base, epsilon, np.random.default_rng(eval_seed)),
        episodes=eval_episodes,
        seed=eval_seed,
        env_kwargs=kwargs,
    )
    import nlp_envs

    ours = {
        "format": 1,
        "nlp_envs_version": nlp_envs.__version__,
        "env_id": env_id,
        "env_kwargs": kwargs,
        **described,
        "epsilon": epsilon,
        "episodes": episodes,
        "seed": seed,
        "num_envs": min(num_envs, episodes),
        "seeding_rule": "episode k is the first episode of a slot reset with seed + k",
        "eval_episodes": eval_episodes,
        "eval_seed": eval_seed,
        "random_return": scored.random_return,
        "oracle_return": scored.oracle_return,
        "behaviour_return": scored.mean_return,
        "behaviour_normalized_score": _json_float(scored.normalized_score),
        "source_data_hashes": _source_data_hashes(kwargs),
        "holds_evaluation_episodes": overlap,
    }
    text = description or (
        f"{ours['behaviour_policy']} with {epsilon:g} random acts on {env_id}{f' {kwargs}' if kwargs else ''}: "
        f"{episodes} episodes from seed {seed}, collected by nlp-envs {nlp_envs.__version__}."
    )
    buffers = [_buffer(minari_module, seed, number, episode) for number, episode in enumerate(logs)]
    if folder.exists():  # another collection wrote this id while this one played: keep its dataset
        raise _exists_already(dataset_id, folder)
    try:
        with warnings.catch_warnings():
            # Minari asks for a code link and an e-mail address, which a local collection has not.
            warnings.filterwarnings("ignore", message=r"`(code_permalink|author_email)` is set to None")
            dataset = minari_module.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=spec,
                eval_env=spec,
                algorithm_name=f"{ours['behaviour_policy']} + {epsilon:g} random",
                author="nlp-envs",
                ref_min_score=scored.random_return,
                ref_max_score=scored.oracle_return,
                description=text,
                requirements=[f"nlp-envs=={nlp_envs.__version__}"],
                data_format="hdf5",
            )
            dataset.storage.update_metadata({METADATA_KEY: ours})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # never leave half a dataset under the id
        raise
    return dataset


METADATA_FIELDS = {
    "format": "1: the version of this record's layout",
    "nlp_envs_version": "the nlp-envs version that collected the dataset",
    "env_id": "the Gymnasium id the episodes were played on",
    "env_kwargs": "the env's keyword arguments (gym.make(env_id, **env_kwargs))",
    "behaviour_policy": "a reference-policy name, or the path of the agent file",
    "behaviour_policy_sha256": "the agent file's sha256; None for a reference policy",
    "epsilon": "the rate of uniformly random allowed acts mixed into the behaviour policy",
    "episodes": "the number of episodes",
    "seed": "episode k is the first episode of a slot seeded seed + k",
    "num_envs": "the vector slots played at once (the acts depend on it)",
    "seeding_rule": "the seeding rule, in words",
    "eval_episodes": "the evaluation episodes of the scores below (as nlp_envs.evaluate's episodes=)",
    "eval_seed": "the seed of evaluation episode 0 (as nlp_envs.evaluate's seed=)",
    "random_return": "the random policy's mean return on the evaluation episodes (= ref_min_score)",
    "oracle_return": "the oracle's mean return on the evaluation episodes (= ref_max_score)",
    "behaviour_return": "the behaviour policy's (with its epsilon) mean return on the evaluation episodes",
    "behaviour_normalized_score": "its normalised score; None where undefined (random = oracle)",
    "source_data_hashes": "{kwarg: sha256} of each data file an env kwarg names; {} for built-in data",
    "holds_evaluation_episodes": "whether some episodes are evaluation episodes (then scores flatter agents)",
}
"""The keys of ``metadata["nlp_envs"]`` of a collected dataset, with their meaning."""


def _check_epsilon(epsilon: Any) -> float:
    number = isinstance(epsilon, (int, float, np.integer, np.floating)) and not isinstance(epsilon, (bool, np.bool_))
    if not number or not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(
            f"collect: epsilon must be a number from 0 to 1 (the rate of random acts), got {epsilon!r}; "
            "e.g. 0.3 for 30% random acts."
        )
    return float(epsilon)


def _collectable_spec(env_id: str, kwargs: dict[str, Any]) -> gym.envs.registration.EnvSpec:
    """The env spec with ``kwargs`` (what Minari records); refuses an unknown id or one without a native vector env."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"collect: env {env_id!r} is not registered ({error}); `nlp-envs envs` lists the ids."
        ) from None
    if not reference_policies(env_id) or not isinstance(spec.entry_point, str):
        raise ValueError(
            f"collect: {env_id} has no native vector env with reference policies; collect from an nlp-envs env "
            "(`nlp-envs envs` lists them)."
        )
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **kwargs})


def _new_dataset_dir(dataset_id: Any) -> Path:
    """The folder the new dataset goes to; refuses a malformed id and one that exists."""
    minari_module = import_minari()
    if not isinstance(dataset_id, str):
        raise ValueError(f"collect: dataset_id must be a string, got {dataset_id!r}.")
    try:
        namespace, _, _ = minari_module.dataset.minari_dataset.parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        namespace = None
    if namespace is None:
        raise ValueError(
            f"collect: dataset id {dataset_id!r} is not a Minari id with a namespace and a version; "
            "expected namespace/name-vN, e.g. nlp_envs/dialogue-rule-eps30-v0."
        )
    root = minari_dataset_dir("")
    try:  # Minari would find out only when it writes, after the whole collection
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as error:
        raise DatasetError(
            f"collect: the Minari datasets folder {str(root)!r} (MINARI_DATASETS_PATH, default ~/.minari/datasets) "
            f"is not a writable folder ({error.strerror or error}); set MINARI_DATASETS_PATH to a folder you can "
            "write to."
        ) from None
    folder = minari_dataset_dir(dataset_id)
    if folder.exists():
        raise _exists_already(dataset_id, folder)
    return folder


def _exists_already(dataset_id: str, folder: Path) -> DatasetError:
    return DatasetError(
        f"dataset {dataset_id!r} exists already at {folder}; choose another id (--dataset-id) or delete "
        f"it (`minari delete {dataset_id}`)."
    )


def _is_agent_file(env_id: str, policy: str | os.PathLike[str]) -> bool:
    """Whether ``policy`` names an agent file: a path object or string, unless it is a reference-policy name."""
    if isinstance(policy, os.PathLike):
        return True
    return policy not in reference_policies(env_id) and (os.sep in policy or Path(policy).is_file())


def _behaviour_policy(
    env_id: str, policy: str | os.PathLike[str], env_kwargs: dict[str, Any]
) -> tuple[Policy, dict[str, Any]]:
    """The policy as ``policy(observations, env)`` and its description for the metadata.

    A saved agent is loaded on a one-slot env of ``env_id`` with ``env_kwargs`` in the default
    (NEXT_STEP) autoreset: most agents refuse the DISABLED env that collection steps, and acting
    needs only the spaces (the policy reads the masks of the env it is called with).
    """
    if not isinstance(policy, (str, os.PathLike)):
        raise ValueError(
            "collect: policy must be a reference-policy name or the path of a saved agent, "
            f"got {type(policy).__name__}."
        )
    policies = reference_policies(env_id)
    if not _is_agent_file(env_id, policy):
        if policy not in policies:
            raise ValueError(
                f"collect: {env_id} has no reference policy {policy!r}; its policies are "
                f"{', '.join(sorted(policies))}, or pass the path of a saved agent."
            )
        return policies[str(policy)], {"behaviour_policy": str(policy), "behaviour_policy_sha256": None}
    path = Path(policy)
    if not path.is_file():
        raise ValueError(
            f"collect: policy {str(policy)!r} is neither a reference policy of {env_id} "
            f"({', '.join(sorted(policies))}) nor an existing agent file."
        )
    import nlp_agents
    from nlp_envs.leaderboard.suites import file_sha256

    shell = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **env_kwargs)
    agent = nlp_agents.load(path, shell)
    return agent_policy(agent), {"behaviour_policy": str(path), "behaviour_policy_sha256": file_sha256(path)}


def _play(
    env: Any, policy: EpsilonPolicy, episodes: int, seed: int, progress: ProgressCallback | None
) -> list[_Episode]:
    """Play episodes ``0 .. episodes - 1`` (slot seeds ``seed + k``) on the vector env, in DISABLED autoreset.

    The loop keeps whole batches per step and cuts the episodes out at the end, so its Python cost
    is per step and per episode, never per slot and step.
    """
    slots = env.num_envs
    core = env.unwrapped.core
    playing = np.arange(slots)  # the episode each slot plays; -1: a spare slot whose data is dropped
    started = np.zeros(slots, dtype=np.int64)  # the step at which each slot's episode began
    spans: list[tuple[int, int, int] | None] = [None] * episodes  # episode -> (slot, first step, last step)
    next_episode, finished = slots, 0
    history: dict[str, list[np.ndarray]] = {
        key: [] for key in ("obs", "mask", "act", "rew", "term", "trunc", "last", "last_mask")
    }
    observations, _ = env.reset(seed=seed)
    if progress is not None:
        progress(0, episodes)  # the loop starts: what a caller times collection from
    step = 0
    while finished < episodes:
        masks = core.action_masks()
        actions = policy(observations, env)
        history["obs"].append(observations)
        history["mask"].append(masks)
        history["act"].append(actions)
        observations, rewards, terminated, truncated, _ = env.step(actions)
        for key, value in (("rew", rewards), ("term", terminated), ("trunc", truncated), ("last", observations)):
            history[key].append(np.asarray(value))
        history["last_mask"].append(core.action_masks())
        ended = np.flatnonzero(terminated | truncated)
        if ended.size:
            seeds: list[int | None] = [None] * slots
            for slot in ended:
                if playing[slot] >= 0:
                    spans[playing[slot]] = (int(slot), int(started[slot]), step)
                    finished += 1
                if next_episode < episodes:
                    playing[slot], seeds[slot] = next_episode, seed + next_episode
                    next_episode += 1
                else:
                    playing[slot] = -1
            started[ended] = step + 1
            reset_mask = np.zeros(slots, dtype=bool)
            reset_mask[ended] = True
            observations, _ = env.reset(seed=seeds, options={"reset_mask": reset_mask})
            if progress is not None:
                progress(finished, episodes)
        step += 1
    batches: dict[str, np.ndarray | None] = {
        key: None if values[0] is None else np.stack(values) for key, values in history.items()
    }
    return [_cut(batches, *span) for span in spans if span is not None]


def _cut(batches: dict[str, np.ndarray | None], slot: int, first: int, last: int) -> _Episode:
    """Episode of ``slot`` over steps ``first .. last`` out of the per-step batches."""

    def column(key: str) -> np.ndarray:
        values = batches[key]
        assert values is not None
        return values[first : last + 1, slot]

    masks = None
    if batches["mask"] is not None and batches["last_mask"] is not None:
        masks = np.concatenate([column("mask"), batches["last_mask"][last, slot][None]]).astype(bool)
    return _Episode(
        observations=np.concatenate([column("obs"), column("last")[-1:]]),
        masks=masks,
        actions=column("act").astype(np.int64),
        rewards=column("rew").astype(np.float64),
        terminations=column("term").astype(bool),
        truncations=column("trunc").astype(bool),
    )


def _buffer(minari_module: Any, seed: int, number: int, episode: _Episode) -> Any:
    return minari_module.data_collector.EpisodeBuffer(
        id=number,
        seed=seed + number,
        observations=episode.observations,
        actions=episode.actions,
        rewards=episode.rewards,
        terminations=episode.terminations,
        truncations=episode.truncations,
        infos=None if episode.masks is None else {"action_mask": episode.masks},
    )


def _json_float(value: float) -> float | None:
    """``value``, or None where it is not finite (JSON has no nan)."""
    return value if math.isfinite(value) else None


def _source_data_hashes(kwargs: dict[str, Any]) -> dict[str, str]:
    """The sha256 of each data file a kwarg names (``{kwarg: hash}``); built-in data is named by the version."""
    from nlp_envs.leaderboard.suites import DATA_FILE_KWARGS, file_sha256

    hashes = {}
    for kwarg in DATA_FILE_KWARGS:
        value = kwargs.get(kwarg)
        if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            hashes[kwarg] = file_sha256(Path(value))
    return hashes


def env_steps_per_second(
    env_id: str, *, num_envs: int, steps: int, env_kwargs: dict[str, Any] | None = None, seed: int = 0
) -> float:
    """The env's own speed, to set collection speed beside: transitions/s of ``steps`` batched steps.

    The same native vector env as :func:`collect` (``num_envs`` slots, NEXT_STEP autoreset) steps
    uniformly random allowed acts drawn in one numpy call per step (the cheapest policy), so the
    figure is the env plus the least a policy can cost.
    """
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **dict(env_kwargs or {}))
    try:
        act = EpsilonPolicy(
            lambda observations, _env: np.zeros(len(observations), np.int64), 1.0, np.random.default_rng(seed)
        )
        observations, _ = env.reset(seed=seed)
        started = time.perf_counter()
        for _ in range(steps):
            observations, *_ = env.step(act(observations, env))
        elapsed = time.perf_counter() - started
    finally:
        env.close()
    return steps * num_envs / max(elapsed, 1e-9)
