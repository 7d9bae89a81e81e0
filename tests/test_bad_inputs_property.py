"""Bad values for env constructors, agent hyper-parameters and suite fields: success or a named error.

Generated bad values (NaN, infinities, negatives, zeros, huge numbers, wrong types, bools for
numbers, empty values, nested structures) go to (a) every registered env through ``gym.make``,
followed by a reset and one step, (b) every built-in agent through ``nlp_agents.make`` on a tiny env
(no learning), (c) the fields of a suite file through ``load_suite``. Each call must succeed or
raise a *named* error: a ``ValueError`` or ``TypeError`` (the project's errors are ValueErrors)
whose message names the parameter. Anything else fails: another exception (IndexError, KeyError,
ZeroDivisionError, MemoryError, OverflowError, AttributeError, AssertionError...), a RuntimeWarning,
or a call that runs longer than ``HANG_SECONDS``.

The tests are deterministic (``derandomize=True``, no example database) and stop at the first
failing example (no shrinking), so that a known failure costs little. Groups that fail because of
code owned elsewhere carry ``xfail(strict=True)`` with the branch that fixes them; the lead removes
the marker after the merge (a strict xfail that starts passing fails the run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import nlp_agents
import nlp_envs
from nlp_envs.cli import env_parameters, fits_annotation
from nlp_envs.core import allowed_acts
from nlp_envs.leaderboard.suites import load_suite

HANG_SECONDS = 10.0

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,  # a hang is caught by `bounded` below, which interrupts; a deadline only reports after
    max_examples=8,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- the bad values, one strategy per class ---------------------------------------------------------

_leaf = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=3), st.booleans(), st.none())
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "non-finite": st.sampled_from([math.nan, math.inf, -math.inf]),
    "negative": st.one_of(st.integers(-(10**9), -1), st.floats(-1e9, -1e-9)),
    "zero": st.sampled_from([0, 0.0, -0.0]),
    "huge": st.one_of(st.sampled_from([10**15, 2**64, 1e300]), st.integers(10**13, 10**19)),
    "wrong-type": st.one_of(
        st.text(min_size=1, max_size=5),
        st.lists(st.integers(-3, 3), min_size=1, max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
        st.complex_numbers(allow_nan=False, allow_infinity=False, min_magnitude=1, max_magnitude=10),
    ),
    "bool": st.booleans(),
    "empty": st.sampled_from(["", [], {}, ()]),
    "nested": st.recursive(
        _leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ).filter(lambda value: isinstance(value, (list, dict))),
}


class Hang(Exception):
    """A call ran longer than HANG_SECONDS."""


@contextmanager
def bounded(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of CPU time and turn RuntimeWarnings into errors.

    CPU time, not wall time, so that a busy machine does not turn a slow first build (data loaded
    and indexed once per process) into a false hang. The signal lands between bytecodes, so a long
    C call is interrupted when it returns.
    """

    def interrupt(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGVTALRM, interrupt)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def success_or_named_error(call: Callable[[], Any], name: str, value: Any) -> None:
    """Run ``call``; accept success or a ValueError/TypeError naming ``name``; fail on anything else."""
    try:
        with bounded():
            call()
    except (ValueError, TypeError) as error:
        assert name in str(error), f"{name}={value!r}: {type(error).__name__} does not name {name!r}: {error}"
    except Hang:
        pytest.fail(f"{name}={value!r}: no answer within {HANG_SECONDS} s of CPU time")
    except BaseException as error:  # every other outcome is the failure under test
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        pytest.fail(f"{name}={value!r}: {type(error).__name__}: {error}")


def fixed_on(branch: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"fixed on branch {branch}")


def cases(groups: list[str], known: dict[tuple[str, str], str | pytest.MarkDecorator]) -> list[Any]:
    """``(group, value class)`` params with readable ids; ``known`` maps failing pairs to their branch."""
    params = []
    for group in groups:
        for kind in BAD_VALUES:
            mark = known.get((group, kind))
            marks = [] if mark is None else [fixed_on(mark) if isinstance(mark, str) else mark]
            params.append(pytest.param(group, kind, id=f"{group}-{kind}", marks=marks))
    return params


# --- (a) env constructors ----------------------------------------------------------------------------


def _core(env_id: str) -> str:
    entry = gym.spec(env_id).vector_entry_point
    return str(entry).rpartition(":")[2].removesuffix("VectorEnv") if entry else env_id


# The presets of one family share a constructor, so its checks. The full-length classification
# presets are left out: their first build embeds every document (7 to 13 s), and the bandit presets
# reach the same checks.
_SLOW_TO_BUILD = {"nlp_envs/TextClassification-v0", "nlp_envs/Sentiment-v0"}
ENV_FAMILIES: dict[str, list[str]] = {}
for _env_id in nlp_envs.env_ids():
    if _env_id not in _SLOW_TO_BUILD:
        ENV_FAMILIES.setdefault(_core(_env_id), []).append(_env_id)

ENV_KNOWN: dict[tuple[str, str], str | pytest.MarkDecorator] = {}
# Names the commands set themselves or that gym.make owns.
_NOT_TASK_KWARGS = {"num_envs", "render_mode", "max_episode_steps", "info_text"}


def _make_reset_step(env_id: str, kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, disable_env_checker=True, **kwargs)
    try:
        env.reset(seed=0)
        masks = getattr(env.unwrapped, "action_masks", lambda: None)()
        if masks is None:
            action = env.action_space.sample()
        else:
            action = int(np.flatnonzero(allowed_acts(np.asarray(masks).reshape(1, -1))[0])[0])
        env.step(action)
    finally:
        env.close()


# Classes whose values can be right for some parameters (a bool for a bool, a string for a string):
# those pairs are not bad input and are skipped.
_TYPE_CLASSES = {"bool", "wrong-type", "nested"}


@pytest.mark.parametrize(("family", "kind"), cases(sorted(ENV_FAMILIES), ENV_KNOWN))
def test_env_constructors_succeed_or_name_the_bad_kwarg(family: str, kind: str) -> None:
    ids = ENV_FAMILIES[family]
    parameters = {
        name: parameter.annotation
        for name, parameter in (env_parameters(ids[0]) or {}).items()
        if name not in _NOT_TASK_KWARGS
    }
    assert parameters, f"{family}: no keyword arguments found"

    @PROPERTY
    @given(env_id=st.sampled_from(ids), name=st.sampled_from(sorted(parameters)), value=BAD_VALUES[kind])
    def check(env_id: str, name: str, value: Any) -> None:
        assume(kind not in _TYPE_CLASSES or not fits_annotation(value, parameters[name]))
        success_or_named_error(lambda: _make_reset_step(env_id, {name: value}), name, value)

    check()


# --- (b) agent hyper-parameters ----------------------------------------------------------------------

BUILTIN_AGENTS = ["random", "qtable", "dqn", "vlearner", "sb3-a2c", "sb3-ppo", "sb3-dqn"]
AGENT_KNOWN: dict[tuple[str, str], str | pytest.MarkDecorator] = {}


def agent_parameters(name: str) -> list[str]:
    """The hyper-parameters an agent accepts, with ``seed`` and ``device``."""
    cls = nlp_agents.entry(name).factory.resolve()
    if hasattr(cls, "Config"):
        names = [field.name for field in dataclasses.fields(cls.Config)]
    else:
        names = list(cls.accepted())
    return sorted({*names, "seed", "device"})


@pytest.fixture(scope="module")
def tiny_env() -> Iterator[Any]:
    env = gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    yield env
    env.close()


@pytest.mark.parametrize(("agent", "kind"), cases(BUILTIN_AGENTS, AGENT_KNOWN))
def test_agent_hyperparameters_succeed_or_name_the_bad_one(agent: str, kind: str, tiny_env: Any) -> None:
    parameters = agent_parameters(agent)

    @PROPERTY
    @given(name=st.sampled_from(parameters), value=BAD_VALUES[kind])
    def check(name: str, value: Any) -> None:
        extra = {} if name == "device" else {"device": "cpu"}
        success_or_named_error(lambda: nlp_agents.make(agent, tiny_env, **{name: value}, **extra), name, value)

    check()


# --- (c) suite fields ----------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as TOML (inline tables and arrays; TOML's own nan and inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's string escapes are TOML's, but for DEL, which TOML wants escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_value(str(key))} = {toml_value(item)}" for key, item in value.items()) + "}"
    return '"unsupported"'


def toml_representable(value: Any) -> bool:
    """TOML has no null and no complex numbers, and integers are 64-bit."""
    if value is None or isinstance(value, complex):
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    if isinstance(value, (list, tuple)):
        return all(toml_representable(item) for item in value)
    if isinstance(value, dict):
        return all(toml_representable(item) for item in value.values())
    return True


SUITE_TOP = {"seeds": 1, "steps": 64, "num_envs": 2, "eval_episodes": 2, "curve_points": 1, "curve_episodes": 2}
SUITE_ENV = {"id": "nlp_envs/NextWordEasy-v0", "kwargs": {}, "eval_kwargs": {}, "steps": 64}
# Counts, text and tables: the three kinds of suite field. A table field that loads must give a table,
# a text field a string; a bad count must be refused.
SUITE_FIELDS = {
    "counts": [*SUITE_TOP, "envs.steps"],
    "text": ["name", "description", "envs.id"],
    "tables": ["envs.kwargs", "envs.eval_kwargs", "nlp_agents.qtable"],
}
SUITE_KNOWN: dict[tuple[str, str], str | pytest.MarkDecorator] = {}


def suite_file(folder: Path, field: str, value: Any) -> Path:
    top = {"name": "prop", "description": "generated", **SUITE_TOP}
    env = dict(SUITE_ENV)
    agent_table: Any = {}
    if field.startswith("envs."):
        env[field.removeprefix("envs.")] = value
    elif field == "nlp_agents.qtable":
        agent_table = value
    else:
        top[field] = value
    lines = [f"{key} = {toml_value(item)}" for key, item in top.items()]
    lines += ["[[envs]]", *(f"{key} = {toml_value(item)}" for key, item in env.items())]
    lines += ["[agents]", f"qtable = {toml_value(agent_table)}"]
    path = folder / "suite.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_loaded(field: str, value: Any, path: Path) -> None:
    """Load the suite; a field that loads must hold a value of its kind, never a converted one."""
    suite = load_suite(str(path))
    short = field.rpartition(".")[2]
    if field in SUITE_FIELDS["text"]:
        loaded = getattr(suite, short, None) if not field.startswith("envs.") else suite.envs[0].id
        assert isinstance(value, str) and loaded == value, f"{field}={value!r} was accepted as {loaded!r}"
    elif field in SUITE_FIELDS["tables"]:
        assert isinstance(value, dict), f"{field}={value!r} was accepted as a table"


@pytest.mark.parametrize(("group", "kind"), cases(sorted(SUITE_FIELDS), SUITE_KNOWN))
def test_suite_fields_succeed_or_name_the_bad_one(group: str, kind: str, tmp_path: Path) -> None:
    fields = SUITE_FIELDS[group]

    @PROPERTY
    @given(field=st.sampled_from(fields), value=BAD_VALUES[kind].filter(toml_representable))
    def check(field: str, value: Any) -> None:
        path = suite_file(tmp_path, field, value)
        success_or_named_error(lambda: check_loaded(field, value, path), field.rpartition(".")[2], value)

    check()
