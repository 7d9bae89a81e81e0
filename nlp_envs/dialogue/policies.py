"""The reference policies of the dialogue task: ``rule`` (reads the observation) and ``oracle`` (reads hidden state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np

from nlp_envs.core import CoreVectorEnv
from nlp_envs.dialogue.acts import THANK

if TYPE_CHECKING:
    from nlp_envs.dialogue.env import DialogueCore


def rule_policy(observations: np.ndarray, env: CoreVectorEnv, threshold: float = 0.8) -> np.ndarray:
    """A hand-written desk agent that reads only the observation (and the ontology's static structure).

    Close after the user thanks; ask the intent while it is unknown or below ``threshold``; request
    the first missing slot the believed intent needs; confirm the least certain needed slot below
    ``threshold``; else execute. Hands off when one more useless turn would make the user hang up
    and it is not ready to execute.
    """
    core = cast("DialogueCore", env.unwrapped.core)
    obs = np.asarray(observations)
    if obs.ndim != 2:
        obs = core.observe()
    layout = core.layout
    belief = obs[:, layout["intent"]]
    intent = belief.argmax(axis=1)
    intent_sure = (obs[:, layout["intent_heard"].start] > 0.5) & (belief.max(axis=1) >= threshold)
    filled = obs[:, layout["filled"]] > 0.5
    conf = obs[:, layout["confidence"]]
    needed = core.required[intent]
    missing = needed & ~filled
    unsure = needed & filled & (conf < threshold)
    thanked = obs[:, layout["user_act"].start + THANK] > 0.5
    last_chance = obs[:, layout["annoyance"].start] >= (core.patience - 1) / core.patience - 1e-6
    actions = np.full(len(obs), core.EXECUTE, dtype=np.int64)
    actions = np.where(unsure.any(axis=1), core.n_slots + 1 + np.where(unsure, conf, 2.0).argmin(axis=1), actions)
    actions = np.where(missing.any(axis=1), 1 + missing.argmax(axis=1), actions)
    actions = np.where(intent_sure, actions, core.ASK)
    repeat = (actions == core.ASK) & (obs[:, layout["intent_heard"].start] > 0.5)
    actions = np.where(last_chance & repeat, core.HANDOFF, actions)
    return np.where(thanked, core.CLOSE, actions)


def oracle_policy(observations: np.ndarray, env: CoreVectorEnv) -> np.ndarray:
    """Uses hidden state: it reads the user's goal and what the understanding got right.

    Close once the task is done; ask the intent until it is understood right; confirm the first
    needed slot understood wrong (the user corrects it) or request the first one not yet heard;
    execute when everything is right. Without noise this completes every goal in the fewest
    turns the user allows (one per missing item, fewer when the user volunteers); with noise it is
    the strongest simple policy, not the exact optimum of the POMDP.
    """
    core = cast("DialogueCore", env.unwrapped.core)
    belief, user = core.belief, core.user
    rows = core._rows
    intent_ok = belief.intent_heard & (belief.intent_value == user.goal_intent)
    required = core.required[user.goal_intent]
    wrong = required & ~(belief.heard & (belief.slot_value == user.goal_values))
    first = wrong.argmax(axis=1)
    fix = np.where(belief.heard[rows, first], core.n_slots + 1 + first, 1 + first)
    actions = np.where(wrong.any(axis=1), fix, core.EXECUTE)
    actions = np.where(intent_ok, actions, core.ASK)
    return np.where(core.call.done, core.CLOSE, actions)
