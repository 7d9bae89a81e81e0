"""Dialogue ontologies: intents, slots, value sets and utterance templates, kept as JSON data.

The project writes its own ontology (no customer-service dialogue data installs from PyPI): the
built-in one is ``"bank"`` (``nlp_envs/data/ontologies/bank.json``, MIT like the project). A user can
point ``Dialogue-v0`` at another file with ``gym.make(..., ontology="path/to/file.json")``; a file
that does not fit the schema raises :class:`OntologyError` naming the file, the key and the intent
or slot, what was expected and how to fix it.

Schema (all keys required unless marked optional)::

    {
      "name": str, "description": str (optional), "source": str (optional), "license": str (optional),
      "slots": {SLOT: {"label": str (optional), "values": [str, >= 2, unique],
                       "request": [str, >= 1], "inform": [str with "{value}", >= 1]}},
      "intents": {INTENT: {"label": str (optional), "slots": [SLOT, >= 1, unique],
                           "inform": [str, >= 1], "execute": [str whose {fields} are its slots, >= 1]}},
      "user": {"greet", "repeat", "irrelevant", "affirm", "negate", "change", "complain", "thank",
               "hangup", "bye": [str, >= 1]},
      "agent": {"open", "ask_intent", "confirm", "handoff", "close": [str, >= 1]}
    }

At least two intents. ``user.change`` may use ``{slot}``; ``agent.confirm`` may use ``{slot}`` and
``{value}``. Template fields are plain ``{name}`` fields only (no ``{name:spec}``, ``{name!r}``,
``{name.attr}``, ``{name[0]}`` or ``{}``), and no object may repeat a key.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp_envs.data.files import DataFileError, JSONProblem, check_file, file_cache, parse_json

__all__ = ["BUILTIN_ONTOLOGIES", "Ontology", "OntologyError", "load_ontology"]

ONTOLOGY_DIR = Path(__file__).parent / "ontologies"
BUILTIN_ONTOLOGIES = ("bank",)
# The user acts with templates of their own (informing uses the slot and intent templates); not
# nlp_envs.dialogue.USER_ACTS, the columns of the observation.
PHRASED_USER_ACTS = (
    "greet",
    "repeat",
    "irrelevant",
    "affirm",
    "negate",
    "change",
    "complain",
    "thank",
    "hangup",
    "bye",
)
AGENT_ACTS = ("open", "ask_intent", "confirm", "handoff", "close")
_ALLOWED_FIELDS = {
    ("user", "change"): {"slot"},
    ("agent", "confirm"): {"slot", "value"},
}


class OntologyError(ValueError):
    """An ontology file that does not fit the schema; the message names the file, key and intent or slot."""


@dataclass(frozen=True, eq=False)
class Ontology:
    """A parsed ontology: names and templates as tuples, the structure as numpy arrays.

    Attributes:
        name: the ontology's name (``"bank"``).
        origin: where it was loaded from (a file path).
        slot_names: the slot keys, in file order; slot ``k`` is ``slot_names[k]``.
        slot_labels: human-readable slot names for the rendered dialogue.
        slot_values: the value set of each slot.
        slot_requests: the agent's questions for each slot.
        slot_informs: the user's phrasings of each slot (with ``{value}``).
        intent_names: the intent keys, in file order.
        intent_labels: human-readable intent names.
        intent_slots: the slot ids each intent needs, in the order the user's agenda tells them.
        intent_informs: the user's phrasings of each intent.
        intent_executes: the agent's confirmation that the task is done (``{slot}`` fields).
        user: the user's templates by act.
        agent: the agent's templates by act.
        required: ``(n_intents, n_slots)`` bool: slot ``k`` is needed by intent ``i``.
        n_values: ``(n_slots,)`` int: the size of each slot's value set.
    """

    name: str
    origin: str
    slot_names: tuple[str, ...]
    slot_labels: tuple[str, ...]
    slot_values: tuple[tuple[str, ...], ...]
    slot_requests: tuple[tuple[str, ...], ...]
    slot_informs: tuple[tuple[str, ...], ...]
    intent_names: tuple[str, ...]
    intent_labels: tuple[str, ...]
    intent_slots: tuple[tuple[int, ...], ...]
    intent_informs: tuple[tuple[str, ...], ...]
    intent_executes: tuple[tuple[str, ...], ...]
    user: dict[str, tuple[str, ...]]
    agent: dict[str, tuple[str, ...]]
    required: np.ndarray
    n_values: np.ndarray

    @property
    def n_intents(self) -> int:
        """How many intents."""
        return len(self.intent_names)

    @property
    def n_slots(self) -> int:
        """How many slots."""
        return len(self.slot_names)

    def restrict(self, intents: tuple[str, ...] | list[str]) -> Ontology:
        """The ontology with only ``intents`` (in the given order) and the slots they use.

        Raises:
            OntologyError: an intent is unknown or fewer than two are given.
        """
        names = tuple(intents)
        unknown = [name for name in names if name not in self.intent_names]
        if unknown or len(names) < 2 or len(set(names)) != len(names):
            raise OntologyError(
                f"Ontology {self.name!r}: intents={list(names)} must be >= 2 distinct intents of "
                f"{list(self.intent_names)}; unknown: {unknown}."
            )
        ids = [self.intent_names.index(name) for name in names]
        used = sorted({slot for index in ids for slot in self.intent_slots[index]})
        renumber = {old: new for new, old in enumerate(used)}
        required = self.required[np.ix_(ids, used)].copy()
        required.flags.writeable = False
        n_values = self.n_values[used].copy()
        n_values.flags.writeable = False
        return Ontology(
            name=f"{self.name}[{','.join(names)}]",
            origin=self.origin,
            slot_names=tuple(self.slot_names[k] for k in used),
            slot_labels=tuple(self.slot_labels[k] for k in used),
            slot_values=tuple(self.slot_values[k] for k in used),
            slot_requests=tuple(self.slot_requests[k] for k in used),
            slot_informs=tuple(self.slot_informs[k] for k in used),
            intent_names=names,
            intent_labels=tuple(self.intent_labels[i] for i in ids),
            intent_slots=tuple(tuple(renumber[k] for k in self.intent_slots[i]) for i in ids),
            intent_informs=tuple(self.intent_informs[i] for i in ids),
            intent_executes=tuple(self.intent_executes[i] for i in ids),
            user=self.user,
            agent=self.agent,
            required=required,
            n_values=n_values,
        )

    def goal_count(self) -> int:
        """The number of distinct goals (an intent and a value for each of its slots)."""
        return int(sum(np.prod(self.n_values[list(slots)]) for slots in self.intent_slots))


def load_ontology(ontology: str | Path = "bank") -> Ontology:
    """Load a built-in ontology by name or an ontology JSON file by path.

    Args:
        ontology: ``"bank"`` or the path of a ``.json`` file following the module's schema.

    Returns:
        The parsed :class:`Ontology` (cached per resolved path).

    Raises:
        OntologyError: the name is unknown, the file is missing or is not JSON, or a key is
            missing or malformed; the message says which key of which intent or slot, and how to fix it.
    """
    if isinstance(ontology, str) and ontology in BUILTIN_ONTOLOGIES:
        path = ONTOLOGY_DIR / f"{ontology}.json"
    else:
        path = Path(ontology)
        if not path.exists() and not path.is_dir():
            raise OntologyError(
                f"Ontology {str(ontology)!r} is neither a built-in ontology {BUILTIN_ONTOLOGIES} nor an "
                "existing file; pass a built-in name or the path of an ontology .json file."
            )
        try:
            check_file(path, "Ontology", "an ontology .json file")
        except DataFileError as error:
            raise OntologyError(str(error)) from None
    return _load(str(path.resolve()))


@file_cache(maxsize=16)
def _load(path: str) -> Ontology:
    try:
        data = parse_json(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise OntologyError(f"Ontology file {path!r} is not valid UTF-8 JSON ({error}); re-save it as UTF-8.") from None
    except OSError as error:
        raise OntologyError(f"Ontology file {path!r} cannot be read ({error.strerror or error}).") from None
    except JSONProblem as problem:
        raise OntologyError(f"Ontology file {path!r} {problem.with_encoding()}; fix the file.") from None
    return parse_ontology(data, origin=path)


def parse_ontology(data: Any, origin: str = "<dict>") -> Ontology:
    """Validate an ontology given as parsed JSON and build the :class:`Ontology`.

    Args:
        data: the parsed JSON object (a dict following the module's schema).
        origin: where it came from, for error messages.

    Returns:
        The :class:`Ontology`.

    Raises:
        OntologyError: a key is missing or malformed (the message names it).
    """
    where = f"Ontology {origin!r}"
    _expect(isinstance(data, dict), where, "the top level must be a JSON object", "wrap the file in {...}")
    for key in ("name", "slots", "intents", "user", "agent"):
        _expect(key in data, where, f"has no top-level key {key!r}", f"add {key!r} (see nlp_envs.data.ontology)")
    _expect(isinstance(data["name"], str) and data["name"], where, "'name' must be a non-empty string", "set it")

    slots = data["slots"]
    _expect(isinstance(slots, dict) and slots, where, "'slots' must be a non-empty object", "add slots")
    slot_names = tuple(slots)
    labels, values, requests, informs = [], [], [], []
    for slot, spec in slots.items():
        at = f"{where}: slot {slot!r}"
        _expect(isinstance(spec, dict), at, "must be an object", 'give it "values", "request" and "inform"')
        labels.append(_label(spec, slot, at))
        slot_values = _strings(spec, "values", at)
        _expect(len(slot_values) >= 2, at, f"key 'values' has {len(slot_values)} value(s); expected >= 2", "add values")
        _expect(len(set(slot_values)) == len(slot_values), at, "key 'values' has duplicates", "remove them")
        values.append(slot_values)
        requests.append(_templates(spec, "request", at, set()))
        informs.append(_templates(spec, "inform", at, {"value"}, needed={"value"}))

    intents = data["intents"]
    _expect(
        isinstance(intents, dict) and len(intents) >= 2,
        where,
        "'intents' must be an object with >= 2 intents",
        "add intents",
    )
    intent_labels, intent_slots, intent_informs, intent_executes = [], [], [], []
    for intent, spec in intents.items():
        at = f"{where}: intent {intent!r}"
        _expect(isinstance(spec, dict), at, "must be an object", 'give it "slots", "inform" and "execute"')
        intent_labels.append(_label(spec, intent, at))
        names = _strings(spec, "slots", at)
        for name in names:
            _expect(
                name in slots,
                at,
                f"key 'slots' names unknown slot {name!r}; known slots: {list(slot_names)}",
                "fix the name or define the slot under 'slots'",
            )
        _expect(len(set(names)) == len(names), at, "key 'slots' lists a slot twice", "remove the duplicate")
        intent_slots.append(tuple(slot_names.index(name) for name in names))
        intent_informs.append(_templates(spec, "inform", at, set()))
        intent_executes.append(_templates(spec, "execute", at, set(names)))

    user = _act_templates(data, "user", PHRASED_USER_ACTS, where)
    agent = _act_templates(data, "agent", AGENT_ACTS, where)
    required = np.zeros((len(intents), len(slot_names)), dtype=bool)
    for index, slot_ids in enumerate(intent_slots):
        required[index, list(slot_ids)] = True
    required.flags.writeable = False
    n_values = np.array([len(v) for v in values], dtype=np.int64)
    n_values.flags.writeable = False
    return Ontology(
        name=data["name"],
        origin=origin,
        slot_names=slot_names,
        slot_labels=tuple(labels),
        slot_values=tuple(values),
        slot_requests=tuple(requests),
        slot_informs=tuple(informs),
        intent_names=tuple(intents),
        intent_labels=tuple(intent_labels),
        intent_slots=tuple(intent_slots),
        intent_informs=tuple(intent_informs),
        intent_executes=tuple(intent_executes),
        user=user,
        agent=agent,
        required=required,
        n_values=n_values,
    )


def _expect(condition: Any, where: str, problem: str, fix: str) -> None:
    if not condition:
        raise OntologyError(f"{where} {problem}; {fix}.")


def _label(spec: dict[str, Any], default: str, at: str) -> str:
    label = spec.get("label", default.replace("_", " "))
    _expect(isinstance(label, str) and label, at, "key 'label' must be a non-empty string", "fix or remove it")
    return label


def _strings(spec: dict[str, Any], key: str, at: str) -> tuple[str, ...]:
    _expect(key in spec, at, f"has no key {key!r}", f"add {key!r} as a list of strings")
    items = spec[key]
    _expect(
        isinstance(items, list) and items and all(isinstance(item, str) and item.strip() for item in items),
        at,
        f"key {key!r} must be a non-empty list of non-empty strings, got {items!r}",
        "fix the list",
    )
    return tuple(items)


def _templates(
    spec: dict[str, Any], key: str, at: str, allowed: set[str], needed: frozenset[str] | set[str] = frozenset()
) -> tuple[str, ...]:
    templates = _strings(spec, key, at)
    for template in templates:
        try:
            parsed = [(name, spec_, conversion) for _, name, spec_, conversion in string.Formatter().parse(template)]
        except ValueError as error:
            raise OntologyError(
                f"{at} key {key!r}: template {template!r} is malformed ({error}); "
                "escape literal braces as {{ and }}."
            ) from None
        fields = set()
        for name, spec_, conversion in parsed:
            if name is None:
                continue
            # Only plain {slot} fields: a format spec ({slot:>100000000}), a conversion ({slot!r}),
            # an attribute or index ({slot.x}, {slot[0]}) or a positional {} would crash step() or
            # write megabytes per utterance.
            plain = name and not spec_ and conversion is None and not set(name) & set(".[]")
            if not plain:
                field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec_}" if spec_ else "") + "}"
                raise OntologyError(
                    f"{at} key {key!r}: template {template!r} has the field {field}, which is not a plain field; "
                    "write fields as {name}, without a format spec, conversion, attribute, index or positional {}."
                )
            fields.add(name)
        unknown = fields - allowed
        _expect(
            not unknown,
            at,
            f"key {key!r}: template {template!r} uses unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}",
            "fix the field names",
        )
        missing = set(needed) - fields
        _expect(
            not missing,
            at,
            f"key {key!r}: template {template!r} lacks {sorted(missing)}",
            "add the field to every template",
        )
    return templates


def _act_templates(data: dict[str, Any], side: str, acts: tuple[str, ...], where: str) -> dict[str, tuple[str, ...]]:
    block = data[side]
    _expect(isinstance(block, dict), f"{where}: {side!r}", "must be an object", f"give it keys {list(acts)}")
    return {act: _templates(block, act, f"{where}: {side!r}", _ALLOWED_FIELDS.get((side, act), set())) for act in acts}
