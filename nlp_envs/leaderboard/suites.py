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

    [[envs]]
    id = "nlp_envs/NextWordEasy-v0"
    name = "NextWordEasy reference-match"   # a variant of an env listed twice needs a name of its own
    kwargs = {split = "train", reward = "reference"}

    [agents.qtable]                  # agent name -> hyper-parameters
    learning_rate = 0.5

Variants: an env id may appear more than once when each entry has a distinct ``name`` (the row
label in the reports; by default the id). Two entries with the same id and no names, or with the
same name, are refused.

Data files: the kwargs in :data:`DATA_FILE_KWARGS` (``corpus``, ``dataset``, ``catalog``,
``ratings``, ``ontology``, ``judgments``, ``features``, ``pairs``) take a built-in data name (``"chitchat"``,
``"bank"``, ...) or the path of a user file. A relative path is read from the folder of the suite
file (not the working directory), and the env gets the absolute path. The sha256 of each file's
content is part of the cell's config (``data_hashes``) and of its identity, so an edited file is a
new cell while the same file run from another folder, or moved, is the same cell.

Sizes are bounded (:data:`LIMITS`), and :meth:`Suite.cells` is a lazy sequence, so a large suite
costs no memory before it runs. :meth:`Suite.check` validates, once and before any cell runs,
the agents, env ids, env kwargs (the same check as ``--env-kwargs``), the device and each agent's
hyper-parameters (:meth:`Suite.check_agent`): an SB3 agent by its ``check_hyperparams`` (names,
types, ranges), a built-in agent by building its config dataclass, and any other plugin agent by
building it once on a 1-slot vector env of the suite's first env. So a bad entry is one line naming
the suite file, the entry and the field, never a failure per cell.

Offline entries: a suite may also train offline agents (``bc``, ``cql``: agents whose class has
``offline = True``) from a logged dataset, and score them online like every other cell::

    [[offline]]
    dataset = "nlp_envs/dialogue-rule-eps30-v0"   # a named dataset id, a Minari id, or a dataset folder
    agents = ["bc", "cql"]                        # or tables: [offline.agents.cql] alpha = 0.5
    gradient_steps = 5000                         # optional: the suite's steps; learn(n) takes n gradient steps
    seeds = 3                                     # optional: the suite's seeds
    name = "Dialogue logs"                        # optional row label; default the dataset id
    eval_kwargs = {}                              # optional: merged over the dataset's env kwargs

``dataset`` is a path when one exists (relative to the suite file's folder), else a Minari id: a
named dataset (``nlp_envs/offline/named_datasets.toml``) that is not yet in ``MINARI_DATASETS_PATH``
is built there on demand (:meth:`Suite.prepare_datasets`; deterministic, said in the log), any
other id must already be there. The env of an offline entry and its kwargs are the dataset's. A
cell's config holds the dataset's id, the sha256 of its files and its behaviour policy's reference
score (``config["dataset"]``), so a changed dataset is a new cell; ``steps`` counts gradient steps.
A suite needs ``[[envs]]`` with ``[agents.NAME]``, ``[[offline]]`` entries, or both.

Named suites ship in the package (``nlp_envs/leaderboard/builtin_suites/NAME.toml``); a name is
looked up there, then in ``benchmarks/suites/NAME.toml`` of the working directory; any other path to
a ``.toml`` file works too.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, overload

from nlp_envs.arguments import KwargsError, check_env_kwargs, kwarg_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PACKAGE_SUITES = Path(__file__).resolve().parent / "builtin_suites"
_SUITE_KEYS = {"name", "description", "seeds", "steps", "num_envs", "eval_episodes", "curve_points", "curve_episodes"}
_ENV_KEYS = {"id", "name", "kwargs", "eval_kwargs", "steps"}
_OFFLINE_KEYS = {"dataset", "name", "agents", "seeds", "gradient_steps", "eval_kwargs"}

# Upper bounds of the integer fields (suite file and --seeds): each is far above any sensible run and
# far below what exhausts memory or time before the first cell ends.
LIMITS = {
    "seeds": 10_000,  # the bootstrap needs tens of runs; 10k is already 1,000x the usual 5-10
    "steps": 10_000_000_000,  # 1e10 env steps: ~15 min per cell at the fastest native vector env
    "num_envs": 65_536,  # vector-env width; per-slot state arrays grow linearly with it
    "eval_episodes": 2**17,  # one seed block of the seeding rule (runner.SEED_STRIDE): the runner's bound
    "curve_points": 1_000,  # each point is one more evaluation during training
    "curve_episodes": 2**17,
}
_DEFAULTS = {"seeds": 3, "steps": 10_000, "num_envs": 8, "eval_episodes": 100, "curve_points": 5, "curve_episodes": 20}

_SET_BY_RUNNER = {
    "num_envs": "the runner sets it from the suite's num_envs",
    "render_mode": "the runner sets it",
    "vectorization_mode": "the runner sets it",
    "autoreset_mode": "the runner sets it (training and scoring count each episode once, in NextStep mode)",
}
"""Env kwargs a cell sets itself, with who sets them; a suite may not give them."""

# Env kwargs that name data: a built-in name or the path of a user file (see the module docstring).
DATA_FILE_KWARGS = ("corpus", "dataset", "catalog", "ratings", "ontology", "judgments", "features", "pairs")


class SuiteError(ValueError):
    """A suite file that is missing or malformed; the message names the file and key."""


def builtin_data_names() -> frozenset[str]:
    """Names that data kwargs accept without a file: the registered datasets and built-in ontologies."""
    from nlp_envs.data import DATASETS
    from nlp_envs.data.ontology import BUILTIN_ONTOLOGIES
    from nlp_envs.data.qa_pairs import QA_DATASETS

    return frozenset(DATASETS) | frozenset(BUILTIN_ONTOLOGIES) | frozenset(QA_DATASETS)


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EnvEntry:
    """One env of a suite: its id, row name, training kwargs, evaluation kwargs and training budget.

    Attributes:
        id: the registered env id.
        kwargs: training kwargs (data-file paths absolute).
        eval_kwargs: evaluation kwargs, ``kwargs`` merged with the entry's ``eval_kwargs``.
        steps: training env steps per cell.
        name: the row label of this variant; empty means the id.
        data_hashes: sha256 of each data file the env reads: ``{kwarg: hash}`` for the training
            kwargs and ``{"eval_kwargs.KWARG": hash}`` where evaluation reads another file.
    """

    id: str
    kwargs: dict[str, Any]
    eval_kwargs: dict[str, Any]
    steps: int
    name: str = ""
    data_hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)


@dataclass(frozen=True)
class DatasetRef:
    """A logged dataset as an offline cell uses it: where to load it from and what identifies its content.

    Attributes:
        id: the dataset's Minari id (from its metadata).
        source: what the agent loads: the Minari id, or the absolute path of the dataset folder.
        sha256: :func:`nlp_envs.offline.dataset_hash` of its files.
        behaviour: the reference row's label, e.g. ``"behaviour (rule, eps 0.3)"``.
        behaviour_return: the behaviour policy's mean return on the dataset's evaluation episodes.
        behaviour_score: its normalised score there; None where undefined.
        eval_episodes: how many evaluation episodes those figures are measured on (from seed ``eval_seed``).
        eval_seed: the seed of the first of them.
    """

    id: str
    source: str
    sha256: str
    behaviour: str
    behaviour_return: float
    behaviour_score: float | None
    eval_episodes: int
    eval_seed: int

    @property
    def record(self) -> dict[str, Any]:
        """What a cell's config holds of the dataset (everything but where it lies)."""
        return {
            "id": self.id,
            "sha256": self.sha256,
            "behaviour": self.behaviour,
            "behaviour_return": self.behaviour_return,
            "behaviour_normalized_score": self.behaviour_score,
            "behaviour_eval_episodes": self.eval_episodes,
            "behaviour_eval_seed": self.eval_seed,
        }


@dataclass(frozen=True)
class OfflineEntry:
    """One ``[[offline]]`` entry: a dataset, the offline agents trained on it, their seeds and gradient steps.

    Attributes:
        number: the entry's position among the suite's ``[[offline]]`` tables (from 1), for messages.
        dataset: the dataset as the suite gives it (an id) or its absolute path.
        is_path: ``dataset`` is a folder on disk (else a Minari id).
        named: ``dataset`` is a named dataset id (built on demand when missing).
        env: the env the cells run on: the dataset's env id and kwargs, ``steps`` = gradient steps,
            ``name`` = the row label.
        agents: offline agent name -> hyper-parameters.
        seeds: the entry's number of seeds; None for the suite's.
        where: ``suite file '...'``, for messages.
    """

    number: int
    dataset: str
    is_path: bool
    named: bool
    env: EnvEntry
    agents: dict[str, dict[str, Any]]
    seeds: int | None = None
    where: str = "suite"
    _resolved: list[DatasetRef] = field(default_factory=list, compare=False, repr=False)

    @property
    def label(self) -> str:
        """``offline entry N (dataset)`` for messages."""
        return f"offline entry {self.number} ({self.dataset})"

    def resolve(self, stream: TextIO | None = None) -> DatasetRef:
        """The dataset's :class:`DatasetRef`, building a named dataset first when it is missing (once per entry).

        Args:
            stream: where to say that a dataset is being built (default: standard error).

        Raises:
            SuiteError: the dataset is missing, corrupt or not made by nlp-envs.
        """
        if not self._resolved:
            self._resolved.append(_resolve_dataset(self, sys.stderr if stream is None else stream))
        return self._resolved[0]


def _check_named_dataset(entry: OfflineEntry, ours: dict[str, Any]) -> None:
    """Refuse a dataset under a named id that is not what the name defines.

    Built from an older definition, or collected by hand under that id, it would give cells that run
    on other data than the name says (and than the same name gives on other machines).

    Raises:
        SuiteError: the first field that differs, with the value on disk and the defined one.
    """
    from nlp_envs.offline import named_datasets
    from nlp_envs.offline.datasets import minari_dataset_dir

    defined = named_datasets()[entry.dataset]
    fields = {
        "env_id": defined.env_id,
        "env_kwargs": defined.env_kwargs,
        "behaviour_policy": defined.policy,
        "epsilon": defined.epsilon,
        "episodes": defined.episodes,
        "seed": defined.seed,
        "num_envs": min(defined.num_envs, defined.episodes),  # as collect records it
    }
    for key, value in fields.items():
        have = (ours.get(key) or {}) if key == "env_kwargs" else ours.get(key)
        if kwarg_text(have) != kwarg_text(value):
            raise SuiteError(
                f"{entry.where}: {entry.label}: the dataset at {minari_dataset_dir(entry.dataset)} is not the named "
                f"dataset {entry.dataset} as defined now: its {key} is {have!r}, the definition says {value!r}; "
                f"delete it (`minari delete {entry.dataset}`) and the suite builds the named one."
            )


def _resolve_dataset(entry: OfflineEntry, stream: TextIO) -> DatasetRef:
    from nlp_envs.offline import DatasetError, build_named, dataset_hash, dataset_metadata
    from nlp_envs.offline.datasets import minari_dataset_dir

    if entry.named and not minari_dataset_dir(entry.dataset).exists():
        stream.write(
            f"building the named dataset {entry.dataset} into {minari_dataset_dir(entry.dataset)} "
            "(deterministic: the same bytes on every machine); this happens once.\n"
        )
        stream.flush()
        try:
            build_named(entry.dataset)
        except (DatasetError, ValueError) as error:
            raise SuiteError(f"{entry.where}: {entry.label}: the named dataset cannot be built: {error}") from None
    try:
        metadata = dataset_metadata(entry.dataset)
        digest = dataset_hash(entry.dataset)
    except DatasetError as error:
        raise SuiteError(f"{entry.where}: {entry.label}: {error}") from None
    ours = metadata["nlp_envs"]
    if entry.named:
        _check_named_dataset(entry, ours)
    if "behaviour_return" not in ours:  # a NaN in the cell's config could not be stored after its training
        raise SuiteError(
            f"{entry.where}: {entry.label}: the dataset's metadata has no nlp_envs.behaviour_return (the behaviour "
            "policy's reference row); collect it again with `nlp-envs collect`."
        )
    policy = str(ours.get("behaviour_policy", "unknown"))
    if ours.get("behaviour_policy_sha256"):  # a saved agent: its file name, not its whole path
        policy = Path(policy).name
    epsilon = ours.get("epsilon")
    score = ours.get("behaviour_normalized_score")
    return DatasetRef(
        id=str(metadata.get("dataset_id") or entry.dataset),
        source=entry.dataset,
        sha256=digest,
        behaviour=f"behaviour ({policy}, eps {epsilon:g})"
        if isinstance(epsilon, (int, float))
        else f"behaviour ({policy})",
        behaviour_return=float(ours.get("behaviour_return", math.nan)),
        behaviour_score=None if score is None else float(score),
        eval_episodes=int(ours.get("eval_episodes", 0)),
        eval_seed=int(ours.get("eval_seed", 0)),
    )


@dataclass(frozen=True)
class Cell:
    """One unit of work: train ``agent`` on ``env`` with ``seed``, then evaluate it.

    An offline cell has ``dataset``: the agent learns from it (``env.steps`` gradient steps) instead
    of stepping the env, and is scored the same way.
    """

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
    dataset: DatasetRef | None = None

    @property
    def config(self) -> dict[str, Any]:
        """Everything besides the key that decides the cell's result (the device does not)."""
        config = {
            "hyperparams": self.hyperparams,
            "env_kwargs": self.env.kwargs,
            "eval_kwargs": self.env.eval_kwargs,
            "steps": self.env.steps,
            "num_envs": self.num_envs,
            "eval_episodes": self.eval_episodes,
            "curve_points": self.curve_points,
            "curve_episodes": self.curve_episodes,
        }
        # Added only when present, so that the cells of suites without variants or files keep their keys.
        if self.env.name != self.env.id:
            config["env_name"] = self.env.name
        if self.env.data_hashes:
            config["data_hashes"] = self.env.data_hashes
        if self.dataset is not None:
            config["dataset"] = self.dataset.record
        return config

    @property
    def config_hash(self) -> str:
        """A short hash of :attr:`config`: a changed config is a new cell, not a finished one.

        Data files count by content (``data_hashes``), not by path: the same file in another folder
        is the same cell, an edited file a new one.
        """
        identity = self.config
        if self.env.data_hashes:
            identity = identity | {
                "env_kwargs": _without_files(self.env.kwargs, self.env.data_hashes, ""),
                "eval_kwargs": _without_files(self.env.eval_kwargs, self.env.data_hashes, "eval_kwargs."),
            }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        """The cell's identity in the results database."""
        return (self.suite, self.agent, self.env.id, self.seed, self.config_hash)


def _without_files(kwargs: dict[str, Any], hashes: dict[str, str], prefix: str) -> dict[str, Any]:
    """``kwargs`` with each data-file path replaced by the content hash of the file."""
    replaced = dict(kwargs)
    for kwarg in kwargs:
        digest = hashes.get(prefix + kwarg, hashes.get(kwarg)) if kwarg in DATA_FILE_KWARGS else None
        if digest is not None:
            replaced[kwarg] = f"sha256:{digest}"
    return replaced


class Cells(Sequence[Cell]):
    """The cells of a suite selection, built on demand: ``len`` is free and nothing is stored.

    Order: the online cells (env entry, then agent, then seed), then the offline ones (entry, agent,
    seed). Building an offline cell resolves its dataset (:meth:`OfflineEntry.resolve`: once per entry).
    """

    def __init__(
        self,
        suite: Suite,
        agents: list[str],
        envs: list[EnvEntry],
        seeds: int,
        device: str,
        offline: list[tuple[OfflineEntry, list[str], int]] | None = None,
    ) -> None:
        self._suite, self._device = suite, device
        # One block per env entry or offline entry: (entry, agents, seeds, offline entry or None).
        self._blocks: list[tuple[EnvEntry, list[str], int, OfflineEntry | None]] = [
            (env, agents, seeds, None) for env in envs if agents
        ]
        self._blocks += [(entry.env, names, count, entry) for entry, names, count in offline or [] if names]

    def __len__(self) -> int:
        return sum(len(agents) * seeds for _, agents, seeds, _ in self._blocks)

    @overload
    def __getitem__(self, index: int) -> Cell: ...

    @overload
    def __getitem__(self, index: slice) -> list[Cell]: ...

    def __getitem__(self, index: int | slice) -> Cell | list[Cell]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        total = len(self)
        if index < 0:
            index += total
        if not 0 <= index < total:
            raise IndexError(f"cell index {index} out of range for {total} cells.")
        for env, agents, seeds, entry in self._blocks:
            size = len(agents) * seeds
            if index < size:
                agent, seed = divmod(index, seeds)
                return self._cell(env, agents[agent], seed, entry)
            index -= size
        raise AssertionError("unreachable: the index was checked against len(self)")

    def __iter__(self) -> Iterator[Cell]:
        for env, agents, seeds, entry in self._blocks:
            for agent in agents:
                for seed in range(seeds):
                    yield self._cell(env, agent, seed, entry)

    def _cell(self, env: EnvEntry, agent: str, seed: int, entry: OfflineEntry | None) -> Cell:
        suite = self._suite
        return Cell(
            suite.name,
            agent,
            suite.agents[agent] if entry is None else entry.agents[agent],
            env,
            seed,
            suite.num_envs,
            suite.eval_episodes,
            suite.curve_points,
            suite.curve_episodes,
            self._device,
            None if entry is None else entry.resolve(),
        )


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
    offline: tuple[OfflineEntry, ...] = ()

    def cells(
        self,
        *,
        agents: list[str] | None = None,
        envs: list[str] | None = None,
        seeds: int | None = None,
        device: str = "auto",
    ) -> Cells:
        """The suite's cells (lazy), optionally narrowed to some agents, envs and fewer or more seeds.

        Args:
            agents: agent names of the suite, online or offline; None for all.
            envs: env names or ids of the suite (an id selects each of its variants; an offline entry
                is selected by its name, its dataset or its env id); None for all.
            seeds: the number of seeds, ``1 .. LIMITS["seeds"]``, for every entry; None for the suite's
                (an offline entry's own ``seeds`` where it gives one).
            device: passed to every cell.
        """
        chosen_agents = self._select_agents(agents)
        chosen_envs = self._select_envs(envs)
        if seeds is not None and (
            not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= LIMITS["seeds"]
        ):
            raise SuiteError(f"--seeds must be an integer from 1 to {LIMITS['seeds']:,}, got {seeds!r}.")
        count = self.seeds if seeds is None else seeds
        offline = [
            (entry, [name for name in entry.agents if name in chosen_agents], seeds or entry.seeds or self.seeds)
            for entry in self._select_offline(envs)
        ]
        online = [name for name in chosen_agents if name in self.agents]
        return Cells(self, online, chosen_envs, count, device, offline)

    def prepare_datasets(
        self, *, agents: list[str] | None = None, envs: list[str] | None = None, stream: TextIO | None = None
    ) -> list[DatasetRef]:
        """Build the missing named datasets of the chosen offline entries and hash every dataset, once.

        :meth:`cells` does the same on demand; calling this first makes the building visible before
        any cell runs (it is said on ``stream``, default standard error).

        Raises:
            SuiteError: a dataset is missing, corrupt or cannot be built (the line names the entry).
        """
        chosen_agents = set(self._select_agents(agents))
        return [
            entry.resolve(stream)
            for entry in self._select_offline(envs)
            if any(name in chosen_agents for name in entry.agents)
        ]

    def check(self, *, agents: list[str] | None = None, envs: list[str] | None = None, device: str = "auto") -> None:
        """Check once, before any cell runs, everything a cell would otherwise refuse cell by cell.

        In order: the agents are installed, the env ids registered, the env kwargs and eval kwargs
        known to each env and of the types its constructor takes (the check ``--env-kwargs`` uses),
        the device valid, and each agent's hyper-parameters acceptable (see :meth:`check_agent`).

        Args:
            agents: only these agent names (as for :meth:`cells`); None for all.
            envs: only these env names or ids; None for all.
            device: the device the cells will run on.

        Raises:
            SuiteError: one line naming the suite file, the entry and the fix.
        """
        import gymnasium as gym

        import nlp_agents as agent_plugins
        import nlp_envs  # noqa: F401  (registers the envs and the env plugins)

        where = f"suite file {str(self.path)!r}"
        chosen_envs = self._select_envs(envs)
        chosen_agents = self._select_agents(agents)
        chosen_offline = [
            entry for entry in self._select_offline(envs) if any(name in chosen_agents for name in entry.agents)
        ]
        for name in chosen_agents:
            if name not in self.agents:
                continue
            try:
                offline = _is_offline(agent_plugins.entry(name))
            except (KeyError, ValueError) as error:
                raise SuiteError(f"{where}: [agents.{name}]: {error.args[0] if error.args else error}") from None
            if offline:
                raise SuiteError(
                    f"{where}: [agents.{name}]: {name} is an offline agent (it learns from a logged dataset, not by "
                    f'acting); train it in an [[offline]] entry (dataset = "...", agents = ["{name}"]).'
                )
        for item in chosen_offline:
            for name in item.agents:
                if name not in chosen_agents:
                    continue
                try:
                    offline = _is_offline(agent_plugins.entry(name))
                except (KeyError, ValueError) as error:
                    raise SuiteError(
                        f"{where}: {item.label}: agent {name!r}: {error.args[0] if error.args else error}"
                    ) from None
                if not offline:
                    known = sorted(
                        agent for agent in agent_plugins.available() if _is_offline(agent_plugins.entry(agent))
                    )
                    raise SuiteError(
                        f"{where}: {item.label}: {name} is an online agent (it learns by acting, not from a dataset); "
                        f"offline agents are {', '.join(known) or '(none installed)'}; move {name} to [agents.{name}]."
                    )
        for number, entry in enumerate(self.envs, start=1):
            if entry not in chosen_envs:
                continue
            env_id = entry.id.split(":", 1)[-1]
            if env_id not in gym.registry:
                registered = sorted(key for key in gym.registry if key.startswith("nlp_envs/"))
                raise SuiteError(
                    f"{where}: envs entry {number} has id {entry.id!r}, which is not a registered env; "
                    f"registered nlp_envs ids: {', '.join(registered)} (run `nlp-envs envs` to list them all)."
                )
            for table, kwargs in (("kwargs", entry.kwargs), ("eval_kwargs", entry.eval_kwargs)):
                label = f"{where}: envs entry {number} ({entry.name}): {table}"
                try:
                    check_env_kwargs(env_id, kwargs, flag=label, given=_SET_BY_RUNNER)
                except KwargsError as error:
                    raise SuiteError(str(error)) from None
        for item in chosen_offline:
            try:
                check_env_kwargs(
                    item.env.id,
                    item.env.eval_kwargs,
                    flag=f"{where}: {item.label}: eval_kwargs",
                    given=_SET_BY_RUNNER,
                )
            except KwargsError as error:
                raise SuiteError(str(error)) from None
        self._check_sizes(where, [*chosen_envs, *(item.env for item in chosen_offline)])
        try:
            agent_plugins.base.resolve_device(device, "--device")
        except ValueError as error:
            raise SuiteError(f"{where}: {error}") from None
        for name in chosen_agents:
            if name in self.agents and chosen_envs:
                self.check_agent(name, chosen_envs[0], device)
        for item in chosen_offline:
            for name in item.agents:
                if name in chosen_agents:
                    self.check_agent(name, item.env, device, item)

    def _check_sizes(self, where: str, envs: list[EnvEntry]) -> None:
        """Build each env at the widths its cells use (training slots; one slot per evaluation episode) once.

        An env refuses a width that cannot fit in memory (:class:`nlp_envs.resources.ResourceLimitError`);
        found here, that is one line before any cell runs instead of a failure of every cell after its training.

        Raises:
            SuiteError: naming the entry and the suite field that sets the width.
        """
        import gymnasium as gym

        from nlp_envs.resources import ResourceLimitError

        episodes = max(self.eval_episodes, self.curve_episodes)
        field = "eval_episodes" if self.eval_episodes >= self.curve_episodes else "curve_episodes"
        for entry in envs:
            env_id = entry.id.split(":", 1)[-1]
            for key, width, kwargs in (("num_envs", self.num_envs, entry.kwargs), (field, episodes, entry.eval_kwargs)):
                try:
                    gym.make_vec(env_id, num_envs=width, vectorization_mode="vector_entry_point", **kwargs).close()
                except ResourceLimitError as error:
                    raise SuiteError(
                        f"{where}: {key} = {width:,} for env {entry.name!r} (one slot per "
                        f"{'training env' if key == 'num_envs' else 'episode'}): {error}"
                    ) from None

    def check_agent(self, name: str, env: EnvEntry, device: str = "auto", offline: OfflineEntry | None = None) -> None:
        """Check agent ``name``'s hyper-parameters once, without running a cell.

        The rule, cheapest first: an agent class with a ``check_hyperparams`` class method (the SB3
        adapter: names, JSON types, :data:`nlp_agents.sb3.RANGES`, dict-valued kwargs) is asked; a class
        with a ``Config`` dataclass (the built-in agents) has it built by
        :func:`nlp_agents.base.build_config` (names, types, ranges, ``validate``); any other agent (a
        plugin) is built once on a 1-slot vector env of ``env``, the suite's first chosen env, with
        its training kwargs, and dropped.

        With ``offline``, the hyper-parameters are those of the agent in that ``[[offline]]`` entry
        (a plugin agent is then built with the entry's dataset).

        Raises:
            SuiteError: the hyper-parameters are refused; the line names the suite file, the agent
                table and the agent's own message (which names the hyper-parameter).
        """
        import dataclasses

        import gymnasium as gym

        import nlp_agents as agent_plugins

        hyperparams = self.agents[name] if offline is None else offline.agents[name]
        table = f"[agents.{name}]" if offline is None else f"{offline.label}: agents.{name}"
        extra = {} if offline is None else {"dataset": offline.resolve().source}
        factory = agent_plugins.entry(name).factory
        resolve = getattr(factory, "resolve", None)
        target: Any = resolve() if callable(resolve) else factory
        try:
            if callable(getattr(target, "check_hyperparams", None)):
                target.check_hyperparams(hyperparams)
            elif dataclasses.is_dataclass(getattr(target, "Config", None)):
                agent_plugins.base.build_config(target.Config, hyperparams, name)
            else:
                vector = gym.make_vec(
                    env.id.split(":", 1)[-1], num_envs=1, vectorization_mode="vector_entry_point", **env.kwargs
                )
                try:
                    agent_plugins.make(name, vector, seed=0, device=device, **extra, **hyperparams)
                finally:
                    vector.close()
        except (ValueError, TypeError) as error:
            detail = " ".join(str(error).split()) or type(error).__name__
            raise SuiteError(f"suite file {str(self.path)!r}: {table}: {detail}") from None

    def _select_agents(self, wanted: list[str] | None) -> list[str]:
        known = list(self.agents)
        known += [name for entry in self.offline for name in entry.agents if name not in known]
        if not wanted:
            return known
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise SuiteError(f"suite {self.name!r} has no agent {unknown[0]!r}; its agents are {known}.")
        return [name for name in known if name in wanted]

    def _select_envs(self, wanted: list[str] | None) -> list[EnvEntry]:
        if not wanted:
            return list(self.envs)
        known = {entry.name for entry in self.envs} | {entry.id for entry in self.envs}
        known |= {name for entry in self.offline for name in _offline_names(entry)}
        unknown = [name for name in wanted if name not in known]
        if unknown:
            names = [entry.name for entry in self.envs] + [entry.env.name for entry in self.offline]
            raise SuiteError(f"suite {self.name!r} has no env named {unknown[0]!r}; its envs are {names}.")
        return [entry for entry in self.envs if entry.name in wanted or entry.id in wanted]

    def _select_offline(self, wanted: list[str] | None) -> list[OfflineEntry]:
        """The offline entries ``wanted`` names (by row name, dataset or env id); all for None."""
        if not wanted:
            return list(self.offline)
        return [entry for entry in self.offline if _offline_names(entry) & set(wanted)]


def _offline_names(entry: OfflineEntry) -> set[str]:
    return {entry.env.name, entry.env.id, entry.dataset}


def _is_offline(agent: Any) -> bool:
    """Whether a registry entry's agent learns from a logged dataset (its class says ``offline = True``)."""
    resolve = getattr(agent.factory, "resolve", None)
    target = resolve() if callable(resolve) else agent.factory
    return getattr(target, "offline", False) is True


def suite_dirs() -> tuple[Path, Path]:
    """Where named suites are looked up, in order: the package, then ``benchmarks/suites`` of the working directory."""
    return (PACKAGE_SUITES, Path.cwd() / "benchmarks" / "suites")


def find_suite(name_or_path: str) -> Path:
    """The file of a named suite (see :func:`suite_dirs`) or a given ``.toml`` path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise SuiteError(f"suite file {str(path)!r} {what}; give the path of a suite .toml file.")
        return path
    for folder in suite_dirs():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({file.stem for folder in suite_dirs() if folder.is_dir() for file in folder.glob("*.toml")})
    raise SuiteError(f"no suite named {name_or_path!r}; known suites: {known}, or give the path of a .toml file.")


def load_suite(name_or_path: str) -> Suite:
    """Parse and check a suite file (types, bounds, unique env names, data files)."""
    path = find_suite(name_or_path).resolve()
    where = f"suite file {str(path)!r}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SuiteError(f"{where} is not valid TOML: {error}") from None
    except OSError as error:
        raise SuiteError(f"{where} cannot be read: {error.strerror or error}.") from None
    unknown = set(data) - _SUITE_KEYS - {"envs", "agents", "offline"}
    if unknown:
        raise SuiteError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; "
            f"known keys: {sorted(_SUITE_KEYS | {'envs', 'agents', 'offline'})}."
        )
    name = _string(where, "name", data.get("name", path.stem))
    if not name.strip():  # it keys every stored cell: an empty one would fail each cell after its training
        raise SuiteError(f"{where}: name must be a non-empty string, got {name!r}.")
    sizes = {key: _bounded_int(where, key, data.get(key, default)) for key, default in _DEFAULTS.items()}
    files = _DataFiles(path.parent, builtin_data_names())
    offline_tables = data.get("offline")
    if offline_tables is not None and (
        not isinstance(offline_tables, list) or not all(isinstance(entry, dict) for entry in offline_tables)
    ):
        raise SuiteError(f"{where}: offline must be a list of [[offline]] tables, got {offline_tables!r}.")
    offline = [
        _offline_entry(where, path.parent, number, entry, sizes["steps"])
        for number, entry in enumerate(offline_tables or [], start=1)
    ]
    online = not offline or "envs" in data or "agents" in data
    envs = (
        [
            _env_entry(where, files, number, entry, sizes["steps"])
            for number, entry in enumerate(_list_of_tables(where, data, "envs"), start=1)
        ]
        if online
        else []
    )
    _check_unique_names(where, envs, offline)
    agents = data.get("agents") if online else {}
    if online and (not isinstance(agents, dict) or not agents):
        raise SuiteError(f"{where} needs an [agents.NAME] table for at least one agent (or only [[offline]] entries).")
    for agent, hyperparams in agents.items():
        if not isinstance(hyperparams, dict):
            raise SuiteError(
                f"{where}: agents.{agent} must be a table of hyper-parameters ([agents.{agent}]), "
                f"got {type(hyperparams).__name__} {hyperparams!r}."
            )
    return Suite(
        name=name,
        path=path,
        envs=tuple(envs),
        agents={str(agent): dict(hyperparams) for agent, hyperparams in agents.items()},
        seeds=sizes["seeds"],
        num_envs=sizes["num_envs"],
        eval_episodes=sizes["eval_episodes"],
        curve_points=sizes["curve_points"],
        curve_episodes=sizes["curve_episodes"],
        description=_string(where, "description", data.get("description", "")),
        offline=tuple(offline),
    )


def _offline_entry(where: str, folder: Path, number: int, entry: dict[str, Any], steps: int) -> OfflineEntry:
    """Parse one ``[[offline]]`` table; the dataset's env comes from its definition or its metadata."""
    from nlp_envs.offline import DatasetError, dataset_metadata, named_datasets
    from nlp_envs.offline.datasets import minari_dataset_dir

    label = f"offline entry {number}"
    extra = set(entry) - _OFFLINE_KEYS
    if extra:
        raise SuiteError(f"{where}: {label} has unknown key {sorted(extra)[0]!r}; known keys: {sorted(_OFFLINE_KEYS)}.")
    if "dataset" not in entry:
        raise SuiteError(f"{where}: {label} has no 'dataset' (a named dataset id, a Minari id or a dataset folder).")
    given = _string(where, f"{label}: dataset", entry["dataset"], empty=False)
    label = f"offline entry {number} ({given})"
    named = named_datasets()
    local = (folder / Path(given).expanduser()).resolve()
    is_path = local.exists()
    dataset = str(local) if is_path else given
    if is_path or given not in named:
        if not is_path and not minari_dataset_dir(given).exists():
            raise SuiteError(
                f"{where}: {label}: dataset {given!r} is not a named dataset ({', '.join(named)}), not a folder "
                f"(relative paths are read from the suite file's folder) and not in Minari's folder "
                f"{minari_dataset_dir(given).parent.parent}; give one of those, or collect it with `nlp-envs collect`."
            )
        try:
            ours = dataset_metadata(dataset)["nlp_envs"]
        except DatasetError as error:
            raise SuiteError(f"{where}: {label}: {error}") from None
        env_id, env_kwargs = str(ours["env_id"]), dict(ours.get("env_kwargs") or {})
    else:
        env_id, env_kwargs = named[given].env_id, dict(named[given].env_kwargs)
    agents = entry.get("agents")
    if isinstance(agents, list) and agents and all(isinstance(agent, str) and agent for agent in agents):
        hyperparams: dict[str, dict[str, Any]] = {agent: {} for agent in agents}
    elif isinstance(agents, dict) and agents and all(isinstance(value, dict) for value in agents.values()):
        hyperparams = {str(agent): dict(value) for agent, value in agents.items()}
    else:
        raise SuiteError(
            f'{where}: {label}: agents must be a non-empty list of offline agent names (agents = ["bc", "cql"]) '
            f"or tables of hyper-parameters ([offline.agents.cql]), got {agents!r}."
        )
    for agent, values in hyperparams.items():
        if "dataset" in values:
            raise SuiteError(
                f"{where}: {label}: agents.{agent} sets dataset, which the entry gives (dataset = {given!r}); "
                "remove it from the hyper-parameters."
            )
    if len(hyperparams) != len(agents):
        raise SuiteError(f"{where}: {label}: agents lists a name twice: {agents!r}; list each agent once.")
    gradient_steps = _bounded_int(
        where, f"{label}: gradient_steps", entry.get("gradient_steps", steps), limit=LIMITS["steps"]
    )
    seeds = entry.get("seeds")
    env = EnvEntry(
        id=env_id,
        kwargs=env_kwargs,
        eval_kwargs=env_kwargs | _table(where, f"{label}: eval_kwargs", entry.get("eval_kwargs", {})),
        steps=gradient_steps,
        name=_string(where, f"{label}: name", entry.get("name", given), empty=False),
    )
    return OfflineEntry(
        number=number,
        dataset=dataset,
        is_path=is_path,
        named=not is_path and given in named,
        env=env,
        agents=hyperparams,
        seeds=None if seeds is None else _bounded_int(where, f"{label}: seeds", seeds, limit=LIMITS["seeds"]),
        where=where,
    )


def _env_entry(where: str, files: _DataFiles, number: int, entry: dict[str, Any], steps: int) -> EnvEntry:
    label = f"envs entry {number}"
    if "id" not in entry:
        raise SuiteError(f"{where}: {label} has no 'id'.")
    extra = set(entry) - _ENV_KEYS
    if extra:
        raise SuiteError(f"{where}: {label} has unknown key {sorted(extra)[0]!r}; known keys: {sorted(_ENV_KEYS)}.")
    env_id = _string(where, f"{label}: id", entry["id"], empty=False)
    label = f"envs entry {number} ({env_id})"
    kwargs = _table(where, f"{label}: kwargs", entry.get("kwargs", {}))
    eval_kwargs = kwargs | _table(where, f"{label}: eval_kwargs", entry.get("eval_kwargs", {}))
    hashes: dict[str, str] = {}
    for kwarg in DATA_FILE_KWARGS:
        for table, values, prefix in (("kwargs", kwargs, ""), ("eval_kwargs", eval_kwargs, "eval_kwargs.")):
            resolved = files.resolve(f"{where}: {label}: {table}.{kwarg}", values.get(kwarg))
            if resolved is None:
                continue
            values[kwarg], digest = resolved
            # Evaluation data counts on its own only where it is another file than the training data.
            if not prefix or values[kwarg] != kwargs.get(kwarg):
                hashes[prefix + kwarg] = digest
    return EnvEntry(
        id=env_id,
        kwargs=kwargs,
        eval_kwargs=eval_kwargs,
        steps=_bounded_int(where, f"{label}: steps", entry.get("steps", steps), limit=LIMITS["steps"]),
        name=_string(where, f"{label}: name", entry.get("name", env_id), empty=False),
        data_hashes=hashes,
    )


class _DataFiles:
    """Resolves data-file kwargs of one suite file against its folder, hashing each file once."""

    def __init__(self, folder: Path, builtin: frozenset[str]) -> None:
        self.folder, self.builtin = folder, builtin
        self.digests: dict[Path, str] = {}

    def resolve(self, where: str, value: Any) -> tuple[str, str] | None:
        """The absolute path and content sha256 of the file ``value`` names; None for a built-in name or no path.

        Raises:
            SuiteError: the file is missing, a folder or unreadable (the message names ``where``).
        """
        if not isinstance(value, str) or value in self.builtin:
            return None
        path = (self.folder / Path(value).expanduser()).resolve()
        if path not in self.digests:
            problem = None
            if not path.exists():
                problem = "does not exist"
            elif not path.is_file():
                problem = "is not a file"
            else:
                try:
                    self.digests[path] = file_sha256(path)
                except OSError as error:
                    problem = f"cannot be read ({error.strerror or error})"
            if problem is not None:
                raise SuiteError(
                    f"{where} = {value!r} is not a built-in name ({', '.join(sorted(self.builtin))}) and the "
                    f"file {str(path)!r} {problem}; relative paths are read from the suite file's folder."
                )
        return str(path), self.digests[path]


def _check_unique_names(where: str, envs: list[EnvEntry], offline: list[OfflineEntry] | None = None) -> None:
    seen: dict[str, int] = {}
    for number, entry in enumerate(envs, start=1):
        if entry.name in seen:
            first = seen[entry.name]
            if entry.name == entry.id:
                raise SuiteError(
                    f"{where}: envs entries {first} and {number} both have id {entry.id!r} and no distinct "
                    'name; give each variant its own name = "..." (the row label in the reports).'
                )
            raise SuiteError(
                f"{where}: envs entries {first} and {number} are both named {entry.name!r}; "
                "every env entry needs a distinct name."
            )
        seen[entry.name] = number
    labels = {name: f"envs entry {number}" for name, number in seen.items()}
    for item in offline or []:
        if item.env.name in labels:
            raise SuiteError(
                f"{where}: {labels[item.env.name]} and {item.label} are both named {item.env.name!r}; give the "
                'offline entry a name = "..." of its own (the row label in the reports).'
            )
        labels[item.env.name] = item.label


def _bounded_int(where: str, key: str, value: Any, limit: int | None = None) -> int:
    bound = LIMITS[key] if limit is None else limit
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SuiteError(f"{where}: {key} must be a positive integer, got {value!r}.")
    if value > bound:
        raise SuiteError(f"{where}: {key} = {value:,} is over the limit of {bound:,}; use a smaller value.")
    return value


def _string(where: str, key: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise SuiteError(f"{where}: {key} must be a {'' if empty else 'non-empty '}string, got {value!r}.")
    return value


def _table(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SuiteError(
            f"{where}: {key} must be a table ({{ key = value, ... }}), got {type(value).__name__} {value!r}."
        )
    return dict(value)


def _list_of_tables(where: str, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = data.get(key)
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise SuiteError(f"{where} needs at least one [[{key}]] table.")
    return entries
