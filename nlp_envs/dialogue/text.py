"""The text rendering: each turn of a call as the desk and the user say it, with what was heard.

Texts are built from :class:`TurnRecord` values (a one-slot core keeps them as it plays; a batch
replays an episode to get them) and the ontology's templates, chosen by the episode key so that
the same dialogue always reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nlp_envs.core import hash_keys
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
# The salt of each template choice of a turn: the desk's line (0), the phrased user acts (1 + their
# index above), the intent (10), a changed mind (20), a slot value on channel A (30) and B (31).
DESK_SALT, INTENT_SALT, CHANGE_SALT, SLOT_SALT = 0, 10, 20, 30
PHRASED_SALTS = tuple(range(1, 1 + len(_PHRASED_ACTS)))
TEMPLATE_SALTS = (DESK_SALT, *PHRASED_SALTS, INTENT_SALT, CHANGE_SALT, SLOT_SALT, SLOT_SALT + 1)
_SALT_COLUMN = {salt: column for column, salt in enumerate(TEMPLATE_SALTS)}
# The phrased acts with their salts, zipped once: (salt, act, name).
_PHRASED_WITH_SALTS = tuple((salt, act, name) for salt, (act, name) in zip(PHRASED_SALTS, _PHRASED_ACTS, strict=True))
# The phrased acts of a row of user acts (keyed by its bytes), as (salt, name) in order: a turn looks its
# few acts up instead of testing all of them (at most 2 ** len(USER_ACTS) rows).
_PHRASINGS: dict[bytes, tuple[tuple[int, str], ...]] = {}


def _phrasings(acts: np.ndarray) -> tuple[tuple[int, str], ...]:
    """The phrased acts (salt, template name) of ``acts``, a ``(len(USER_ACTS),)`` bool row of user acts."""
    key = acts.tobytes()
    found = _PHRASINGS.get(key)
    if found is None:
        flags = acts.tolist()
        found = _PHRASINGS[key] = tuple((salt, name) for salt, act, name in _PHRASED_WITH_SALTS if flags[act])
    return found


_SALT_COUNTERS = np.array(TEMPLATE_SALTS, dtype=np.uint64) + np.uint64(7919)  # the counters of pick()


class TurnRecord(NamedTuple):
    """One turn of a one-slot core's call, as the text needs it.

    Attributes:
        action: the desk's act (``DeskActs.opening`` for the opening).
        intent: the desk's believed intent just before the act.
        values: its believed value of each slot just before the act (Python integers).
        user_acts: ``(len(USER_ACTS),)`` the user's acts in answer.
        said: what the user said.
        readings: what the channel heard of it.
    """

    action: int
    intent: int
    values: list[int]
    user_acts: np.ndarray
    said: Said
    readings: Readings


class TemplateDraws:
    """The template choices of one episode, drawn from its key (the same dialogue always reads the same).

    Turn ``t``'s choice with salt ``s`` comes from the hash of ``(key, t, 7919 + s)`` (as
    ``core.random_integers``); the hashes of every salt of :data:`TEMPLATE_SALTS` are drawn for ``BLOCK``
    turns at a time, in one vectorised call (:func:`template_hashes`), so a turn's text costs no
    numpy call of its own.

    Args:
        key: the episode key, shape ``(1,)`` uint64.
        first: the hashes of the first ``BLOCK`` turns if already drawn (``template_hashes(key, 0)[0]``,
            an array the draws only read), else None.
    """

    BLOCK = 8

    def __init__(self, key: np.ndarray, first: np.ndarray | None = None) -> None:
        self.key = np.asarray(key, dtype=np.uint64).reshape(1)
        # Blocks of hashes, each ``(BLOCK, len(TEMPLATE_SALTS))``; a turn's row becomes a list when it is read
        # (a call reads a few turns of its first block: converting the whole block would be wasted).
        self._blocks: list[np.ndarray] = [] if first is None else [first]

    def hashes(self, turn: int) -> list[int]:
        """Turn ``turn``'s 64-bit hashes, one per salt of :data:`TEMPLATE_SALTS` (in that order)."""
        block, row = divmod(turn, self.BLOCK)
        while block >= len(self._blocks):
            self._blocks.append(template_hashes(self.key, len(self._blocks) * self.BLOCK)[0])
        return self._blocks[block][row].tolist()


# A block's turn offsets, as a column: hashed against the keys, then against every salt (broadcast).
_BLOCK_TURNS = np.arange(TemplateDraws.BLOCK, dtype=np.uint64)[:, None]


def template_hashes(keys: np.ndarray, start: int) -> np.ndarray:
    """``(m, TemplateDraws.BLOCK, len(TEMPLATE_SALTS))`` uint64: the template hashes of ``keys`` from turn ``start``."""
    return hash_keys(keys[:, None, None], _BLOCK_TURNS + np.uint64(start), _SALT_COUNTERS)


def pick(templates: Sequence[str], hashes: list[int], salt: int) -> str:
    """The template that a turn's ``hashes`` (:meth:`TemplateDraws.hashes`) choose with ``salt``."""
    return templates[hashes[_SALT_COLUMN[salt]] % len(templates)]


def turn_lines(ontology: Ontology, desk: DeskActs, record: TurnRecord, draws: TemplateDraws, turn: int) -> list[str]:
    """The desk's act of ``turn`` (its greeting for the opening, turn 0) and the user's answer, as said."""
    hashes = draws.hashes(turn)
    said = pick(ontology.agent["open"], hashes, DESK_SALT) if turn == 0 else agent_text(ontology, desk, record, hashes)
    return [f"Agent: {said}", user_line(ontology, record, hashes)]


def agent_text(ontology: Ontology, desk: DeskActs, record: TurnRecord, hashes: list[int]) -> str:
    """The desk's act as said, with its belief just before it (``hashes``: the turn's template draws)."""
    onto, agent, action, values = ontology, ontology.agent, record.action, record.values
    n_slots = desk.n_slots
    if action == desk.ask:
        return pick(agent["ask_intent"], hashes, DESK_SALT)
    if action <= n_slots:
        return pick(onto.slot_requests[action - 1], hashes, DESK_SALT)
    if action <= 2 * n_slots:
        slot = action - n_slots - 1
        value = onto.slot_values[slot][values[slot]]
        return pick(agent["confirm"], hashes, DESK_SALT).format(slot=onto.slot_labels[slot], value=value)
    if action == desk.execute:
        fields = {onto.slot_names[k]: onto.slot_values[k][values[k]] for k in range(n_slots)}
        done = pick(onto.intent_executes[record.intent], hashes, DESK_SALT).format(**fields)
        return f"[executes: {onto.intent_labels[record.intent]}] {done}"
    return pick(agent["handoff" if action == desk.handoff else "close"], hashes, DESK_SALT)


def user_line(ontology: Ontology, record: TurnRecord, hashes: list[int]) -> str:
    """The user's turn as said, then what the understanding heard of it (``hashes``: the turn's template draws)."""
    onto, user = ontology, ontology.user
    said, readings = record.said, record.readings
    parts = [pick(user[name], hashes, salt) for salt, name in _phrasings(record.user_acts)]
    if not len(readings.truth):  # nothing said (most turns of a call): no intent or value to phrase
        return _user_says(parts)
    acts = record.user_acts.tolist()  # Python values: cheaper to read
    truth, heard_as, conf = readings.truth.tolist(), readings.heard.tolist(), readings.conf.tolist()
    heard: list[str] = []
    channels: list[tuple[str, int | None]] = [("intent", None)] * len(said.intent_rows)
    channels += [("a", k) for k in said.a_slots.tolist()] + [("b", k) for k in said.b_slots.tolist()]
    if acts[CHANGE] and not len(said.b_rows):  # the changed slot is the one just answered
        parts.append(pick(user["change"], hashes, CHANGE_SALT).format(slot=onto.slot_labels[int(said.a_slots[0])]))
    for index, (channel, slot) in enumerate(channels):
        if slot is None:
            parts.append(pick(onto.intent_informs[truth[index]], hashes, INTENT_SALT))
            heard.append(f"intent={onto.intent_names[heard_as[index]]} ({conf[index]:.2f})")
            continue
        if channel == "b" and acts[CHANGE]:
            parts.append(pick(user["change"], hashes, CHANGE_SALT).format(slot=onto.slot_labels[slot]))
        if channel == "a" and acts[AFFIRM]:
            continue
        value = onto.slot_values[slot][truth[index]]
        parts.append(pick(onto.slot_informs[slot], hashes, SLOT_SALT + (channel == "b")).format(value=value))
        heard.append(f"{onto.slot_names[slot]}={onto.slot_values[slot][heard_as[index]]} ({conf[index]:.2f})")
    return _user_says(parts) + (f"   [heard: {'; '.join(heard)}]" if heard else "")


def _user_says(parts: list[str]) -> str:
    """The user's line: its parts, each capitalised, joined."""
    return "User: " + " ".join([part[0].upper() + part[1:] for part in parts])  # a list joins faster than a generator
