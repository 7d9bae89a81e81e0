"""Checks of keyword arguments from outside (the command line, suite files), shared by every caller.

The command line (``--env-kwargs``), suites (``kwargs``/``eval_kwargs`` of an env entry) and the
SB3 adapter's hyper-parameters check names and JSON types against a constructor's signature with
the same functions, so that a value one of them accepts the others accept too. Env side only: this
module imports neither the agents nor torch.
"""

from __future__ import annotations

import argparse
import collections.abc
import inspect
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class KwargsError(ValueError):
    """A keyword argument that a constructor does not take, or of a type it does not take."""


class KwargNameError(KwargsError, TypeError):
    """A keyword argument name that a constructor does not take, or that its caller sets itself.

    A ``TypeError`` too, as Python's own error for an unexpected keyword argument: Gymnasium and
    users catch ``TypeError`` for a bad keyword argument, the command line ``KwargsError``.
    """


def kwarg_text(value: Any) -> str:
    """A kwarg value as JSON text, for comparing kwargs recorded in files with an env's.

    A tuple and the list a file gives back compare equal, as do a numpy scalar and its Python value;
    other objects (a path) compare as their text.
    """
    return json.dumps(
        value, sort_keys=True, default=lambda item: item.item() if isinstance(item, np.generic) else str(item)
    )


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_env_id_type(env_id: Any) -> None:
    """Refuse an ``env_id`` that is not a string (Gymnasium's own error names no argument).

    Raises:
        TypeError: ``env_id`` is not a ``str``.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a registered id (a str), got {env_id!r}; nlp_envs.env_ids() lists them.")


def signature(function: Any) -> inspect.Signature:
    """The signature with evaluated annotations, or with none where they do not evaluate."""
    try:
        return inspect.signature(function, eval_str=True)
    except Exception:  # an annotation that does not evaluate only loses the type check
        found = inspect.signature(function)
        return found.replace(
            parameters=[item.replace(annotation=inspect.Parameter.empty) for item in found.parameters.values()]
        )


def env_parameters(env_id: str) -> dict[str, inspect.Parameter] | None:
    """The keyword arguments ``gym.make_vec(env_id, vectorization_mode="vector_entry_point")`` accepts.

    Follows ``**task_kwargs`` into the batched core (``core_class``) of our envs. Returns None when
    the accepted names cannot be known (an entry point that takes ``**kwargs`` and has no core).

    Raises:
        gymnasium.error.Error: ``env_id`` is not registered.
    """
    spec = gym.spec(env_id)
    entry = spec.vector_entry_point or spec.entry_point
    factory = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return factory_parameters(factory)


def factory_parameters(factory: Any) -> dict[str, inspect.Parameter] | None:
    """The keyword arguments an env class or creator takes, following ``**task_kwargs`` into its ``core_class``.

    Returns None when the accepted names cannot be known (``**kwargs`` and no core to follow).
    """
    core = getattr(factory, "core_class", None)
    parameters: dict[str, inspect.Parameter] = {}
    open_ended = False
    # Our envs pass ``**task_kwargs`` on to their batched core: its signature holds the rest.
    for function in (factory, core):
        if function is None or (function is core and not open_ended):
            continue
        open_ended = False
        for parameter in signature(function).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
                parameters[parameter.name] = parameter
    return None if open_ended else parameters


def check_kwarg_names(
    env_id: str,
    names: Iterable[str],
    parameters: Mapping[str, inspect.Parameter] | None,
    flag: str = "",
    given: Mapping[str, str] | None = None,
) -> None:
    """Refuse a keyword argument name that is not in ``parameters``, or that the caller sets itself.

    Args:
        env_id: the env, for the message.
        names: the names the user gave.
        parameters: the names the constructor takes (:func:`env_parameters`, :func:`factory_parameters`);
            None when they cannot be known: then only ``given`` is checked.
        flag: where the names come from (a command-line flag, a suite entry), the start of the message.
        given: names the caller sets itself, each with who sets it and how the user chooses it instead.

    Raises:
        KwargNameError: an unknown name (the message lists the valid ones) or a reserved one.
    """
    given = given or {}
    for name in names:
        if name in given:
            raise KwargNameError(
                f"{flag or env_id}: {name!r} cannot be given here: {given[name]}; remove it from {flag or 'the call'}."
            )
        if parameters is not None and name not in parameters:
            valid = ", ".join(sorted(set(parameters) - set(given)))
            if flag:
                raise KwargNameError(f"{flag}: {env_id} has no keyword argument {name!r}; valid ones: {valid}.")
            # Python's own words: libraries retry without a keyword on them (TorchRL's GymEnv drops
            # ``frameskip`` when the error says "unexpected keyword argument 'frameskip'").
            raise KwargNameError(f"{env_id}: got an unexpected keyword argument {name!r}; valid ones: {valid}.")


def check_env_kwargs(
    env_id: str, kwargs: dict[str, Any], flag: str = "--env-kwargs", given: Mapping[str, str] | None = None
) -> None:
    """Refuse unknown or ill-typed env keyword arguments before anything is built.

    Args:
        env_id: a registered id.
        kwargs: the user's keyword arguments (from JSON or TOML).
        flag: where they come from (a command-line flag, or a suite file and entry), for the message.
        given: names the caller sets itself (e.g. ``num_envs``), each with who sets it and how the user
            chooses it instead (e.g. ``"the command sets it from --num-envs"``); not allowed in ``kwargs``.

    Raises:
        KwargsError: an unknown name (the message lists the valid ones) or a reserved one (both
            :class:`KwargNameError`), or a value whose type does not fit the constructor's annotation.
    """
    parameters = env_parameters(env_id)
    if parameters is None:
        return
    check_kwarg_names(env_id, kwargs, parameters, flag, given)
    for name, value in kwargs.items():
        kind = parameters[name].annotation
        if kind is not inspect.Parameter.empty and not fits_annotation(value, kind):
            raise KwargsError(
                f"{flag}: {name}={value!r} has type {type(value).__name__}; {env_id} expects {type_name(kind)}."
            )


def fits_annotation(value: Any, kind: Any) -> bool:
    """Whether a value fits an annotation (ints fit floats, lists and tuples fit sequences, bools only bools).

    A fixed-length ``tuple[A, B]`` wants that many items of those types; ``dict[K, V]`` checks keys
    and values; ``type[C]`` wants a subclass of ``C``.
    """
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(fits_annotation(value, option) for option in arguments)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if origin is typing.Literal:
        return value in arguments
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple and arguments and arguments[-1] is not Ellipsis:
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(arguments)
            and all(fits_annotation(item, item_kind) for item, item_kind in zip(value, arguments, strict=True))
        )
    if isinstance(origin, type) and issubclass(origin, collections.abc.Sequence) and origin is not str:
        return isinstance(value, (list, tuple)) and (
            not arguments or all(fits_annotation(item, arguments[0]) for item in value)
        )
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        if not isinstance(value, collections.abc.Mapping):
            return False
        key_kind, item_kind = arguments if len(arguments) == 2 else (Any, Any)
        return all(fits_annotation(key, key_kind) and fits_annotation(item, item_kind) for key, item in value.items())
    if origin is type:
        return isinstance(value, type) and (
            not arguments or not isinstance(arguments[0], type) or issubclass(value, arguments[0])
        )
    if isinstance(origin, type):
        return isinstance(value, origin)
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True


def type_name(kind: Any) -> str:
    """An annotation as a user reads it (``int | None``, ``list[int]``)."""
    if isinstance(kind, type) and not typing.get_args(kind):
        return kind.__name__
    return str(kind).replace("typing.", "").replace("collections.abc.", "")
