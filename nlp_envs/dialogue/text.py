"""The text rendering: each turn of a call as the desk and the user say it, with what was heard.

Texts are built from :class:`TurnRecord` values (a one-slot core keeps them as it plays; a batch
replays an episode to get them) and the ontology's templates, chosen by the episode key so that
the same dialogue always reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp_envs.core import random_integers
from nlp_envs.data.ontology import Ontology
from nlp_envs.dialogue.acts import (
    AFFIRM,
    BYE,
    CHANGE,
    COMPLAIN,
    GREET,
    HANGUP,
    IRRELEVANT,
    NEGATE,
    REPEAT,
    THANK,
    USER_ACTS,
    DeskActs,
)
from nlp_envs.dialogue.channel import Readings, Said

# The user acts said with a template of their own (in this order), before any informed values.
_PHRASED_ACTS = tuple(
    (act, USER_ACTS[act]) for act in (GREET, REPEAT, IRRELEVANT, AFFIRM, NEGATE, COMPLAIN, THANK, HANGUP, BYE)
)


@dataclass(frozen=True)
class TurnRecord:
    """One turn of a one-slot core's call, as the text needs it.

    Attributes:
        action: the desk's act (``DeskActs.opening`` for the opening).
        intent: the desk's believed intent just before the act.
        values: ``(n_slots,)`` its believed values just before the act.
        user_acts: ``(len(USER_ACTS),)`` the user's acts in answer.
        said: what the user said.
        readings: what the channel heard of it.
    """

    action: int
    intent: int
    values: np.ndarray
    user_acts: np.ndarray
    said: Said
    readings: Readings


def pick(templates: Sequence[str], key: np.ndarray, turn: int, salt: int) -> str:
    """A template chosen by the episode key (the same dialogue always reads the same)."""
    return templates[int(random_integers(key, len(templates), turn, 7919 + salt)[0])]


def turn_lines(ontology: Ontology, desk: DeskActs, record: TurnRecord, key: np.ndarray, turn: int) -> list[str]:
    """The desk's act of ``turn`` (its greeting for the opening, turn 0) and the user's answer, as said."""
    said = pick(ontology.agent["open"], key, 0, 0) if turn == 0 else agent_text(ontology, desk, record, key, turn)
    return [f"Agent: {said}", user_line(ontology, record, key, turn)]


def agent_text(ontology: Ontology, desk: DeskActs, record: TurnRecord, key: np.ndarray, turn: int) -> str:
    """The desk's act as said, with its belief just before it."""
    onto, agent, action, values = ontology, ontology.agent, record.action, record.values
    n_slots = desk.n_slots
    if action == desk.ask:
        return pick(agent["ask_intent"], key, turn, 0)
    if action <= n_slots:
        return pick(onto.slot_requests[action - 1], key, turn, 0)
    if action <= 2 * n_slots:
        slot = action - n_slots - 1
        value = onto.slot_values[slot][int(values[slot])]
        return pick(agent["confirm"], key, turn, 0).format(slot=onto.slot_labels[slot], value=value)
    if action == desk.execute:
        fields = {onto.slot_names[k]: onto.slot_values[k][int(values[k])] for k in range(n_slots)}
        done = pick(onto.intent_executes[record.intent], key, turn, 0).format(**fields)
        return f"[executes: {onto.intent_labels[record.intent]}] {done}"
    return pick(agent["handoff" if action == desk.handoff else "close"], key, turn, 0)


def user_line(ontology: Ontology, record: TurnRecord, key: np.ndarray, turn: int) -> str:
    """The user's turn as said, then what the understanding heard of it."""
    onto, user, acts = ontology, ontology.user, record.user_acts
    said, readings = record.said, record.readings
    truth, heard_as, conf = readings.truth, readings.heard, readings.conf
    parts, heard = [], []
    for salt, (act, name) in enumerate(_PHRASED_ACTS):
        if acts[act]:
            parts.append(pick(user[name], key, turn, 1 + salt))
    channels: list[tuple[str, int | None]] = [("intent", None)] * len(said.intent_rows)
    channels += [("a", int(k)) for k in said.a_slots] + [("b", int(k)) for k in said.b_slots]
    if acts[CHANGE] and not len(said.b_rows):  # the changed slot is the one just answered
        parts.append(pick(user["change"], key, turn, 20).format(slot=onto.slot_labels[int(said.a_slots[0])]))
    for index, (channel, slot) in enumerate(channels):
        if slot is None:
            parts.append(pick(onto.intent_informs[int(truth[index])], key, turn, 10))
            heard.append(f"intent={onto.intent_names[int(heard_as[index])]} ({conf[index]:.2f})")
            continue
        if channel == "b" and acts[CHANGE]:
            parts.append(pick(user["change"], key, turn, 20).format(slot=onto.slot_labels[slot]))
        if channel == "a" and acts[AFFIRM]:
            continue
        value = onto.slot_values[slot][int(truth[index])]
        parts.append(pick(onto.slot_informs[slot], key, turn, 30 + (channel == "b")).format(value=value))
        heard.append(f"{onto.slot_names[slot]}={onto.slot_values[slot][int(heard_as[index])]} ({conf[index]:.2f})")
    line = "User: " + " ".join(part[0].upper() + part[1:] for part in parts)
    return line + (f"   [heard: {'; '.join(heard)}]" if heard else "")
