"""Dialogue: a customer-service desk talking to an agenda-based user simulator through a noisy channel.

The task in parts, each a module: :mod:`~nlp_envs.dialogue.acts` (the desk's and the user's acts),
:mod:`~nlp_envs.dialogue.user` (the user simulator), :mod:`~nlp_envs.dialogue.channel` (the noisy
channel), :mod:`~nlp_envs.dialogue.belief` (the Bayes belief update), :mod:`~nlp_envs.dialogue.text`
(the text rendering), :mod:`~nlp_envs.dialogue.policies` (the reference policies) and
:mod:`~nlp_envs.dialogue.env` (the core that wires them, and the env shells, whose docstring is the
documentation). They pass named records to each other: named tuples for a turn's acts, words and
readings (immutable, and cheap to build every turn), frozen dataclasses for the state.
"""

from nlp_envs.dialogue.acts import (
    AFFIRM,
    BYE,
    CHANGE,
    COMPLAIN,
    GREET,
    HANGUP,
    INFORM,
    IRRELEVANT,
    NEGATE,
    REPEAT,
    THANK,
    USER_ACTS,
)
from nlp_envs.dialogue.env import DialogueCore, DialogueEnv, DialogueVectorEnv
from nlp_envs.dialogue.policies import oracle_policy, rule_policy

__all__ = [
    "AFFIRM",
    "BYE",
    "CHANGE",
    "COMPLAIN",
    "GREET",
    "HANGUP",
    "INFORM",
    "IRRELEVANT",
    "NEGATE",
    "REPEAT",
    "THANK",
    "USER_ACTS",
    "DialogueCore",
    "DialogueEnv",
    "DialogueVectorEnv",
    "oracle_policy",
    "rule_policy",
]
