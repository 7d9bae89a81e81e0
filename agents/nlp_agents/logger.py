"""Scalars for TensorBoard: the small logger every agent is handed, and the writer behind it.

The contract between the host and an agent (built-in or plugin):

- An agent that can log has a method ``set_logger(logger)``. ``nlp_agents.make(name, env,
  tensorboard=DIR)`` calls it with a :class:`TensorBoardLogger` writing to ``DIR`` (and ``nlp-envs
  train/bench --tensorboard DIR`` with one per run folder, see :func:`run_folder`). Asking for
  TensorBoard with an agent that has no ``set_logger`` is an error (:class:`LoggerNotSupportedError`),
  never a run that silently writes nothing.
- The logger is a :class:`Logger`: ``logger.scalar(tag, value, step)`` writes one scalar,
  ``logger.scalars({tag: value}, step)`` several at one step (one event: cheaper), ``step`` being the
  env steps done so far (all slots together). ``logger.interval`` is how many env steps an agent
  lets pass between two writes of its aggregated scalars: write every K steps, never every step.
- Until ``set_logger`` is called, agents hold :data:`NULL_LOGGER`, whose methods do nothing.

:class:`EpisodeLog` is the aggregation the built-in agents (and the SB3 adapter) share; a plugin may
use it too. The tags they write:

================================  ==================================================================
``rollout/ep_return_mean``        mean return of the episodes that ended since the last write
``rollout/ep_length_mean``        their mean length (steps)
``rollout/episodes``              how many episodes ended since the last write
``rollout/<metric>``              mean of each task metric at episode end (the env's ``metric_names``:
                                  ``success``, ``turns``, ``ctr``, ``correct``...)
``time/steps_per_second``         env steps per second of training since the last write (time in
                                  the ``learn`` callback, such as a bench cell's evaluations, excluded)
``train/epsilon``                 exploration rate (epsilon-greedy agents)
``train/learning_rate``           the optimiser's step size
``train/loss``                    the last update's loss (SB3: its own ``train/*`` losses as well)
``train/q_mean``, ``train/v_mean``  mean greedy Q value, or mean state value, of the current states
``eval/normalized_score``         bench cells: the evaluation's normalised score at each curve point
``eval/mean_return``              bench cells: its mean return
``eval/final_normalized_score``   bench cells and ``nlp-envs train``: the final evaluation, at the
                                  last step (``eval/final_mean_return``: its mean return)
================================  ==================================================================

The writer is the ``tensorboard`` package's own event-file writer (the optional extra
``nlp-envs[tensorboard]``); its files are read by TensorBoard and by
``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nlp_envs import atomic

TENSORBOARD_EXTRA = "pip install 'nlp-envs[tensorboard]'"
"""The command that installs what :class:`TensorBoardLogger` needs."""

DEFAULT_INTERVAL = 1000
"""Env steps between two writes of an agent's aggregated scalars (``benchmarks/tensorboard_overhead.py``
measures what writing costs at this setting)."""


class LoggerNotSupportedError(ValueError):
    """TensorBoard was asked for, but the agent has no ``set_logger(logger)`` to be handed a logger."""


class Logger:
    """What an agent is handed to write scalars; this base class writes nothing.

    A subclass that writes implements :meth:`scalar` or :meth:`scalars` (and :meth:`flush`, :meth:`close`
    if it buffers).

    Args:
        interval: env steps between two writes of an agent's aggregated scalars (>= 1).
    """

    def __init__(self, interval: int = DEFAULT_INTERVAL) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 1:
            raise ValueError(f"logger interval must be an integer >= 1 (env steps between writes), got {interval!r}.")
        self.interval = int(interval)

    @property
    def writes(self) -> bool:
        """Whether this logger writes anything (agents skip their bookkeeping for one that does not)."""
        kind = type(self)
        return kind.scalars is not Logger.scalars or kind.scalar is not Logger.scalar

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Write scalar ``value`` under ``tag`` at env step ``step`` (nothing, in this base class)."""

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Write every ``tag: value`` of ``values`` at env step ``step``: :meth:`scalar` for each, by default."""
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def flush(self) -> None:
        """Make what was written readable now."""

    def close(self) -> None:
        """Flush and release the file; later writes are errors."""


NULL_LOGGER = Logger()
"""The logger agents hold until ``set_logger`` is called: it writes nothing."""


def _tensorboard_modules() -> tuple[Any, Any, Any]:
    """``(EventFileWriter, Event, Summary)`` from the ``tensorboard`` package, or a named error."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as error:
        raise ModuleNotFoundError(
            f"TensorBoard logging needs the tensorboard package, which could not be imported ({error}); "
            f"install the extra: {TENSORBOARD_EXTRA}"
        ) from None
    return EventFileWriter, Event, Summary


def check_tensorboard(log_dir: str | os.PathLike[str]) -> Path:
    """Check, before any work, that event files can be written in folder ``log_dir``; return it as a Path.

    Raises:
        ModuleNotFoundError: the ``tensorboard`` package is missing (the message names the extra).
        atomic.NotWritableError: ``log_dir`` is a file, sits below a file, or is not writable.
    """
    _tensorboard_modules()
    folder = Path(log_dir)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"is below the file {str(existing)!r}"
        raise atomic.NotWritableError(f"{str(folder)!r} {where}; give a folder for the TensorBoard event files.")
    try:
        atomic.check_writable(folder / "events.out.tfevents")
    except atomic.NotWritableError as error:
        reason = str(error).split(": ", 1)[-1]  # without the probe file's name
        raise atomic.NotWritableError(f"{str(folder)!r}: cannot write TensorBoard event files: {reason}") from None
    return folder


class TensorBoardLogger(Logger):
    """Writes scalars into a TensorBoard event file in ``log_dir`` (created with its parents).

    Each :meth:`scalars` call is one event holding all its values. A value that is not a real number
    is a ``TypeError`` naming its tag; NaN and infinities are written as they are (TensorBoard shows them).

    Args:
        log_dir: the run folder.
        interval: env steps between two writes of an agent's aggregated scalars.

    Raises:
        ModuleNotFoundError: the ``tensorboard`` package is missing (the message names the extra).
        atomic.NotWritableError: the folder cannot be written.
    """

    def __init__(self, log_dir: str | Path, interval: int = DEFAULT_INTERVAL) -> None:
        super().__init__(interval)
        self.log_dir = check_tensorboard(log_dir)
        writer_class, self._event, self._summary = _tensorboard_modules()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = writer_class(str(self.log_dir))
        self.replaced = 0  # event files of an earlier run removed before this one (see open_logger)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Write scalar ``value`` under ``tag`` at env step ``step``."""
        self.scalars({tag: value}, step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Write every ``tag: value`` of ``values`` at env step ``step``, as one event."""
        if self._writer is None:
            raise ValueError(f"this TensorBoardLogger of {str(self.log_dir)!r} is closed; make a new one.")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be an integer >= 0 (env steps so far), got {step!r}.")
        entries = []
        for tag, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"scalar {tag!r} must be a real number, got {type(value).__name__} {value!r}.")
            entries.append(self._summary.Value(tag=str(tag), simple_value=float(value)))
        if entries:
            summary = self._summary(value=entries)
            self._writer.add_event(self._event(summary=summary, step=int(step), wall_time=time.time()))

    def flush(self) -> None:
        """Write what is queued to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (closing twice is harmless)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.log_dir)!r}, interval={self.interval})"


def _folder_name(text: str) -> str:
    """``text`` as one folder name: path separators and characters unsafe in file names become ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9._+=@-]", "_", str(text)).strip(".")
    return cleaned or "_"


def run_folder(root: str | Path, agent: str, env: str, seed: int) -> Path:
    """The run folder of one training run under ``root``: ``root/agent/env/seed-S``.

    ``env`` is an env id or a suite's variant name; ``/`` and other characters that cannot be in a
    folder name become ``_`` (``nlp_envs/NextWord-v0`` -> ``nlp_envs_NextWord-v0``).
    """
    return Path(root) / _folder_name(agent) / _folder_name(env) / f"seed-{int(seed)}"


def check_takes_logger(agent: Any, name: str) -> None:
    """Raise :class:`LoggerNotSupportedError` unless ``agent`` has a ``set_logger(logger)`` method."""
    if not callable(getattr(agent, "set_logger", None)):
        raise LoggerNotSupportedError(
            f"agent {name!r} ({type(agent).__name__}) cannot write TensorBoard scalars: it has no "
            "set_logger(logger) method; run it without --tensorboard (tensorboard=), or ask its plugin's author "
            "to add set_logger (see nlp_agents.logger)."
        )


EVENT_FILES = "events.out.tfevents.*"
"""The names of TensorBoard's event files (what :func:`open_logger` replaces)."""


def open_logger(tensorboard: str | Path, agent: Any, name: str, *, replace: bool = False) -> TensorBoardLogger:
    """A :class:`TensorBoardLogger` of folder ``tensorboard``, handed to ``agent`` through its ``set_logger``.

    Args:
        tensorboard: the run folder.
        agent: an agent, as its factory built it.
        name: the agent's name, for the message.
        replace: remove the event files an earlier run left in the folder first (its ``replaced``
            attribute counts them). ``train`` and ``bench`` do: their run folder ``agent/env/seed-S``
            stands for one run, and TensorBoard would draw two runs in one folder as one zigzag curve.
            Without ``replace``, a folder that holds event files already is a ``UserWarning``.

    Raises:
        LoggerNotSupportedError: the agent has no ``set_logger`` (checked first: no folder is made).
        ModuleNotFoundError: the ``tensorboard`` package is missing.
        atomic.NotWritableError: the folder cannot be written.
    """
    check_takes_logger(agent, name)
    stale = sorted(Path(tensorboard).glob(EVENT_FILES))
    if stale and not replace:
        # TensorBoard reads every event file of a folder as one run: two runs' curves would interleave.
        warnings.warn(
            f"tensorboard folder {str(tensorboard)!r} holds {len(stale)} event file(s) of an earlier run already; "
            "TensorBoard draws both runs as one curve; give each run a folder of its own "
            "(nlp_agents.logger.run_folder).",
            UserWarning,
            stacklevel=3,
        )
        stale = []
    for path in stale:
        path.unlink()
    logger = TensorBoardLogger(tensorboard)
    logger.replaced = len(stale)
    agent.set_logger(logger)
    return logger


class EpisodeLog:
    """Aggregates what a learning loop sees and writes it every ``logger.interval`` env steps.

    Episodes are fed either step by step from a vector env with NEXT_STEP autoreset (:meth:`step`) or
    as finished episodes (:meth:`add_episodes`); :meth:`write` writes their means, the steps per
    second since the last write and the agent's own scalars, then starts a new aggregate.

    Args:
        logger: where to write.
        num_envs: slots of the vector env.
        metric_names: the env's task metrics (``env.unwrapped.metric_names``), read from the infos of
            the step that ends an episode.
    """

    def __init__(self, logger: Logger, num_envs: int, metric_names: tuple[str, ...] = ()) -> None:
        self.logger = logger
        self.metric_names = tuple(metric_names)
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._ended_returns: list[np.ndarray] = []
        self._ended_lengths: list[np.ndarray] = []
        self._ended_metrics: dict[str, list[np.ndarray]] = {name: [] for name in self.metric_names}
        self._next_write = 0
        self._last_steps = 0
        self._last_time = time.perf_counter()
        self._excluded = 0.0  # seconds since the last write spent outside training (callbacks)

    def start(self, steps: int) -> None:
        """Start timing at env step ``steps`` (each ``learn`` call: time between calls is not training)."""
        self._last_steps, self._last_time, self._excluded = steps, time.perf_counter(), 0.0
        if self._next_write <= steps:
            self._next_write = (steps // self.logger.interval + 1) * self.logger.interval

    def timed(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` wrapped so that the time spent in it does not count as training in the steps per second.

        A bench cell evaluates the agent from its callback; that time is not training.
        """

        def timed_callback(*args: Any) -> Any:
            began = time.perf_counter()
            try:
                return callback(*args)
            finally:
                self._excluded += time.perf_counter() - began

        return timed_callback

    def due(self, steps: int) -> bool:
        """Whether a write is due at env step ``steps`` (a multiple of the interval was reached)."""
        return steps >= self._next_write

    def step(self, rewards: np.ndarray, ended: np.ndarray, valid: np.ndarray, infos: Mapping[str, Any]) -> None:
        """Add one vector step of a NEXT_STEP-autoreset env.

        Args:
            rewards: the step's rewards.
            ended: the episodes that ended at this step.
            valid: real transitions (False on the reset step of a slot whose episode had ended).
            infos: the step's infos (task metrics of the ending slots).
        """
        self._returns += np.where(valid, rewards, 0.0)
        self._lengths += valid
        if ended.any():
            slots = np.flatnonzero(ended)
            metrics = {name: np.asarray(infos[name])[slots] for name in self.metric_names if name in infos}
            self.add_episodes(self._returns[slots], self._lengths[slots], metrics)
            self._returns[slots] = 0.0
            self._lengths[slots] = 0

    def add_episodes(self, returns: Any, lengths: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Add finished episodes: their returns, lengths and task metrics (arrays of one value per episode)."""
        self._ended_returns.append(np.array(returns, dtype=np.float64, ndmin=1))
        self._ended_lengths.append(np.array(lengths, dtype=np.float64, ndmin=1))
        for name, values in (metrics or {}).items():
            if name in self._ended_metrics:
                self._ended_metrics[name].append(np.array(values, dtype=np.float64, ndmin=1))

    def write(self, steps: int, extra: Mapping[str, float] | None = None) -> None:
        """Write the aggregate at env step ``steps`` with the agent's ``extra`` scalars; start a new one.

        The ``rollout/*`` tags are written only when an episode ended since the last write.
        """
        now = time.perf_counter()
        values: dict[str, float] = {}
        if self._ended_returns:
            returns = np.concatenate(self._ended_returns)
            values["rollout/ep_return_mean"] = float(returns.mean())
            values["rollout/ep_length_mean"] = float(np.concatenate(self._ended_lengths).mean())
            values["rollout/episodes"] = float(len(returns))
            for name, chunks in self._ended_metrics.items():
                if chunks:
                    values[f"rollout/{name}"] = float(np.concatenate(chunks).mean())
        training = now - self._last_time - self._excluded
        if steps > self._last_steps and training > 0:
            values["time/steps_per_second"] = (steps - self._last_steps) / training
        values.update(extra or {})
        self.logger.scalars(values, steps)
        self._ended_returns, self._ended_lengths = [], []
        self._ended_metrics = {name: [] for name in self.metric_names}
        self._last_steps, self._last_time, self._excluded = steps, time.perf_counter(), 0.0
        self._next_write = (steps // self.logger.interval + 1) * self.logger.interval

    def finish(self, steps: int, extra: Callable[[], Mapping[str, float]]) -> None:
        """At the end of a ``learn`` call: write a last point if steps were taken since the last write; flush.

        Args:
            steps: env steps done so far.
            extra: returns the agent's own scalars (called only when a point is written).
        """
        if steps > self._last_steps:
            self.write(steps, extra())
        self.logger.flush()
