"""Dialogue-v0: the user simulator, the noisy channel, masks, reference policies and the ontology loader."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs
from nlp_envs.core import _drawn_arrays, random_integers
from nlp_envs.data.ontology import ONTOLOGY_DIR, OntologyError, load_ontology
from nlp_envs.dialogue import AFFIRM, COMPLAIN, HANGUP, THANK, USER_ACTS, DialogueCore, oracle_policy
from nlp_envs.dialogue.acts import DESK_KINDS, DeskTurn
from nlp_envs.dialogue.channel import joined, noisy
from nlp_envs.dialogue.draws import GOAL_STREAM, TURN_STREAM, TurnDraws, episode_uniforms, uniforms
from nlp_envs.dialogue.text import TEMPLATE_SALTS, TemplateDraws, pick
from nlp_envs.dialogue.user import NEVER
from tests.conftest import make_vec

GOALS = load_ontology("bank").goal_count()
DIALOGUE_IDS = [
    "nlp_envs/DialogueClean-v0",
    "nlp_envs/Dialogue-v0",
    "nlp_envs/DialogueNoisy-v0",
    "nlp_envs/DialogueEasy-v0",
]


def all_goals(core: DialogueCore) -> tuple[np.ndarray, np.ndarray]:
    """Every goal of the ontology: an intent and a value for each of its slots (others 0)."""
    onto = core.ontology
    intents, values = [], []
    for intent, slots in enumerate(onto.intent_slots):
        for combo in itertools.product(*(range(onto.n_values[slot]) for slot in slots)):
            row = np.zeros(onto.n_slots, dtype=np.int64)
            row[list(slots)] = combo
            intents.append(intent)
            values.append(row)
    return np.array(intents), np.array(values)


def run_first_episodes(env, policy, max_steps: int) -> dict[str, np.ndarray]:
    """Run every slot's first episode to its end; return its return and metrics per slot."""
    n = env.num_envs
    returns, finished = np.zeros(n), np.zeros(n, dtype=bool)
    metrics = {name: np.zeros(n) for name in env.unwrapped.metric_names}
    observations = env.unwrapped.core.observe()
    for _ in range(max_steps):
        observations, rewards, terminated, truncated, infos = env.step(policy(observations, env))
        running = ~finished
        returns[running] += rewards[running]
        ended = (terminated | truncated) & running
        for name in metrics:
            if ended.any():
                metrics[name][ended] = infos[name][ended]
        finished |= ended
        if finished.all():
            break
    assert finished.all()
    return {"return": returns, **metrics}


@pytest.mark.parametrize("p_change", [0.1, 1.0], ids=["default-change", "always-change"])
def test_oracle_succeeds_on_every_goal_without_noise(p_change: float) -> None:
    env = make_vec("nlp_envs/DialogueClean-v0", GOALS, p_change=p_change)
    env.reset(seed=0)
    core = env.unwrapped.core
    intents, values = all_goals(core)
    assert len(intents) == core.ontology.goal_count() == env.num_envs
    core.begin_with_goals(np.arange(len(intents)), core.user.keys.copy(), intents, values)
    results = run_first_episodes(env, oracle_policy, env.unwrapped.episode_limit)
    assert results["success"].min() == 1.0
    np.testing.assert_allclose(results["return"], core.success_reward - results["turns"])
    # Never more turns than: ask the intent, one request per slot, execute, close.
    assert (results["turns"] <= core.simulator.slot_counts[intents] + 3).all()


def test_oracle_takes_exactly_the_fewest_turns_with_a_user_that_never_volunteers() -> None:
    env = make_vec("nlp_envs/DialogueClean-v0", GOALS, p_open_intent=0.0, p_volunteer=0.0, p_change=0.0)
    env.reset(seed=1)
    core = env.unwrapped.core
    intents, values = all_goals(core)
    core.begin_with_goals(np.arange(len(intents)), core.user.keys.copy(), intents, values)
    results = run_first_episodes(env, oracle_policy, env.unwrapped.episode_limit)
    np.testing.assert_array_equal(results["turns"], core.simulator.slot_counts[intents] + 3)


@pytest.mark.parametrize("env_id", DIALOGUE_IDS)
def test_rule_beats_random_by_a_wide_margin(env_id: str) -> None:
    rule = nlp_envs.evaluate(env_id, "rule", episodes=400, seed=0)
    random = nlp_envs.evaluate(env_id, "random", episodes=400, seed=0)
    oracle = nlp_envs.evaluate(env_id, "oracle", episodes=400, seed=0)
    # random acts only among the allowed acts, so it sometimes stumbles on the right task.
    assert rule.metrics["success"] >= 0.8 > 0.25 >= random.metrics["success"]
    assert rule.mean_return - random.mean_return > 15.0
    assert rule.normalized_score > 0.7
    assert oracle.metrics["success"] >= rule.metrics["success"]


def test_noise_makes_the_task_harder() -> None:
    successes = [
        nlp_envs.evaluate(env_id, "rule", episodes=400, seed=0).metrics["success"] for env_id in DIALOGUE_IDS[:3]
    ]
    assert successes[0] > successes[1] > successes[2]


@pytest.mark.parametrize("env_id", ["nlp_envs/Dialogue-v0", "nlp_envs/DialogueNoisy-v0", "nlp_envs/DialogueEasy-v0"])
@pytest.mark.parametrize("policy_name", ["random", "rule"])
def test_masks_are_consistent_with_the_belief_state(env_id: str, policy_name: str) -> None:
    env = make_vec(env_id, 64)
    env.action_space.seed(0)
    core: DialogueCore = env.unwrapped.core
    layout = core.layout
    policy = nlp_envs.reference_policy(env_id, policy_name)
    observations, infos = env.reset(seed=0)
    for _ in range(60):
        masks = infos["action_mask"]
        np.testing.assert_array_equal(masks, env.unwrapped.action_masks())
        np.testing.assert_array_equal(masks, core.masks_from_observations(observations))
        assert masks.any(axis=1).all(), "some belief state allows no act"
        intent_known = observations[:, layout["intent_heard"].start] > 0.5
        filled = observations[:, layout["filled"]] > 0.5
        confidence = observations[:, layout["confidence"]]
        needed = observations[:, layout["needed"]] > 0.5
        thanked = observations[:, layout["user_act"].start + THANK] > 0.5
        confirm = masks[:, core.n_slots + 1 : 2 * core.n_slots + 1]
        request = masks[:, 1 : core.n_slots + 1]
        assert not (confirm & ~filled).any(), "confirming an unfilled slot is allowed"
        assert not (request & (confidence >= 0.999)).any(), "requesting a certain slot is allowed"
        assert not (confirm & intent_known[:, None] & ~needed).any(), "confirming a slot the intent does not need"
        executable = masks[:, core.EXECUTE]
        assert not (executable & ~intent_known).any()
        assert not (executable[:, None] & needed & ~filled).any(), "executing with a needed slot unfilled"
        np.testing.assert_array_equal(masks[:, core.CLOSE], thanked)
        assert not (masks[thanked].sum(axis=1) != 1).any(), "after thanks only close makes sense"
        np.testing.assert_array_equal(confidence[~filled], 0.0)
        np.testing.assert_allclose(observations[:, layout["intent"]].sum(axis=1), 1.0, rtol=1e-5)
        observations, _, _, _, infos = env.step(policy(observations, env))


@pytest.mark.parametrize("known", ["all", "none", "some"])
@pytest.mark.parametrize("thanked", ["none", "some"])
def test_masks_follow_the_rule_in_every_batch_the_mask_skips_parts_of(known: str, thanked: str) -> None:
    # The mask skips its parts that change nothing when no slot has thanked, or when the intent is
    # known in every slot or in none: each such batch gets the rule as the docstring states it.
    core = DialogueCore(1)
    layout, n, rng = core.layout, 32, np.random.default_rng(0)
    observations = np.zeros((n, core.obs_size), dtype=np.float32)
    intent_known = {"all": np.ones(n, bool), "none": np.zeros(n, bool), "some": rng.random(n) < 0.5}[known]
    filled = rng.random((n, core.n_slots)) < 0.5
    needed = (rng.random((n, core.n_slots)) < 0.5) & intent_known[:, None]
    confidence = np.where(filled, rng.choice(np.array([0.5, 0.998, 0.999, 1.0], np.float32), (n, core.n_slots)), 0)
    thanks = rng.random(n) < 0.3 if thanked == "some" else np.zeros(n, bool)
    observations[:, layout["intent_heard"].start] = intent_known
    observations[:, layout["filled"]], observations[:, layout["needed"]] = filled, needed
    observations[:, layout["confidence"]] = confidence
    observations[:, layout["user_act"].start + THANK] = thanks
    waiting = ~thanks[:, None]
    requests = (needed | ~intent_known[:, None]) & (confidence < np.float32(0.999)) & waiting
    execute = intent_known & ~(needed & ~filled).any(axis=1) & ~thanks
    expected = np.concatenate(
        (waiting, requests, requests & filled, execute[:, None], waiting, thanks[:, None]), axis=1
    )
    np.testing.assert_array_equal(core.masks_from_observations(observations), expected)


def test_single_env_info_carries_the_mask() -> None:
    env = gym.make("nlp_envs/Dialogue-v0")
    observation, info = env.reset(seed=3)
    for action in (0, 1, 11, 21):
        np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())
        expected = env.unwrapped.core.masks_from_observations(observation[None])[0]
        np.testing.assert_array_equal(info["action_mask"], expected)
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break


def test_confidence_is_calibrated() -> None:
    core = DialogueCore(1, error_rate=0.3)
    rng = np.random.default_rng(0)
    n = 200_000
    true = rng.integers(5, size=(n, 1))
    heard, conf = noisy(true, np.full((n, 1), 5), rng.random((n, 1)), core.error_rate)
    right = (heard == true).ravel()
    assert right.mean() == pytest.approx(0.7, abs=0.01)
    conf = conf.ravel()
    for low, high in ((0.02, 0.4), (0.4, 0.7), (0.7, 0.9), (0.9, 0.99)):
        inside = (conf >= low) & (conf < high)
        assert right[inside].mean() == pytest.approx(conf[inside].mean(), abs=0.02)


def test_no_noise_means_full_confidence_and_right_readings() -> None:
    env = make_vec("nlp_envs/DialogueClean-v0", 128)
    observations, _ = env.reset(seed=0)
    core = env.unwrapped.core
    for _ in range(10):
        observations, *_ = env.step(oracle_policy(observations, env))
        heard = core.belief.heard
        np.testing.assert_array_equal(core.belief.slot_value[heard], core.user.goal_values[heard])
        np.testing.assert_allclose(core.belief.slot_conf[heard], 1.0)


def test_rewards_turns_and_episode_ends() -> None:
    env = gym.make("nlp_envs/DialogueClean-v0")
    core = env.unwrapped.core
    env.reset(seed=0)
    # Executing before anything is known: a wrong execution, the user complains, the call goes on.
    _, reward, terminated, _, _ = env.step(core.EXECUTE)
    assert reward == -core.turn_cost - core.wrong_penalty and not terminated
    assert core.user.acts[0, COMPLAIN]
    _, reward, terminated, _, info = env.step(core.HANDOFF)
    assert reward == -core.turn_cost - core.handoff_cost and terminated
    assert (info["success"], info["turns"], info["handoff"]) == (0.0, 2.0, 1.0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(core.CLOSE)
    assert reward == -core.turn_cost - core.lost_penalty and terminated and info["handoff"] == 0.0


def test_the_user_hangs_up_after_patience_useless_turns() -> None:
    env = gym.make("nlp_envs/DialogueClean-v0", patience=3)
    core = env.unwrapped.core
    env.reset(seed=0)
    intent = int(core.user.goal_intent[0])
    irrelevant = 1 + int(np.flatnonzero(~core.required[intent])[0])
    rewards = []
    for _ in range(3):
        _, reward, terminated, _, info = env.step(irrelevant)
        rewards.append(reward)
    assert terminated and core.user.acts[0, HANGUP]
    assert rewards == [-1.0, -1.0, -1.0 - core.lost_penalty]
    assert info["success"] == 0.0


def test_confirming_a_right_value_gets_an_affirmation_and_certainty() -> None:
    env = gym.make("nlp_envs/Dialogue-v0")
    core = env.unwrapped.core
    for seed in range(50):
        env.reset(seed=seed)
        slot = int(core.simulator.agenda[core.user.goal_intent[0], 0])
        if core.belief.heard[0, slot] and core.belief.slot_value[0, slot] == core.user.goal_values[0, slot]:
            break
    else:
        pytest.fail("no opening volunteered a right first slot in 50 seeds")
    observation, *_ = env.step(core.n_slots + 1 + slot)
    assert core.user.acts[0, AFFIRM]
    assert observation[core.layout["confidence"]][slot] >= 0.999


def test_changed_mind_updates_the_goal_and_the_oracle_follows() -> None:
    env = make_vec("nlp_envs/DialogueClean-v0", 256, p_change=1.0)
    env.reset(seed=0)
    core = env.unwrapped.core
    start = core.user.goal_values.copy()
    results = run_first_episodes(env, oracle_policy, 20)
    # Slots that ended are not restarted yet (autoreset happens on the next step).
    changed = (core.user.goal_values != start).any(axis=1)
    assert changed.mean() > 0.3
    assert results["success"].min() == 1.0


def test_a_single_env_user_changes_its_mind_in_the_episodes_that_plan_it() -> None:
    # The single env skips the test of who is due while no user plans a change: across episodes that
    # plan one and episodes that do not, each planned change still happens (by its turn, in a long call).
    env = gym.make("nlp_envs/DialogueClean-v0", p_change=0.5, max_turns=30, patience=30)
    core, changed, planned = env.unwrapped.core, 0, 0
    for episode in range(20):
        env.reset(seed=episode)
        start = core.user.goal_values.copy()
        planned += bool(core.user.change_turn[0] < NEVER)
        for action in [*range(1 + core.n_slots)] * 2:  # the intent and every slot asked, twice: all told by then
            env.step(action)
        changed += bool((core.user.goal_values != start).any())
    assert 0 < planned < 20 and changed == planned


def test_text_shows_both_sides_and_what_was_heard() -> None:
    env = gym.make("nlp_envs/DialogueNoisy-v0", render_mode="ansi")
    _, info = env.reset(seed=4)
    policy = nlp_envs.reference_policy("nlp_envs/DialogueNoisy-v0", "rule")
    vector = make_vec("nlp_envs/DialogueNoisy-v0", 1)
    vector.reset(seed=4)
    observation = vector.unwrapped.core.observe()
    while True:
        action = int(policy(observation, vector)[0])
        observation, *_ = vector.step(np.array([action]))
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    text = info["text"]
    assert text == env.render()
    lines = text.splitlines()
    assert lines[0].startswith("Agent: ") and lines[1].startswith("User: ")
    assert sum(line.startswith("Agent: ") for line in lines) == info["turns"] + 1
    assert "[heard: intent=" in text
    env.reset(seed=4)
    assert env.render() == lines[0] + "\n" + lines[1]


def test_vector_info_text_matches_single_env_text() -> None:
    vector = make_vec("nlp_envs/Dialogue-v0", 3, info_text=True)
    single = gym.make("nlp_envs/Dialogue-v0")
    _, infos = vector.reset(seed=10)
    _, info = single.reset(seed=10)
    assert infos["text"][0] == info["text"]
    for action in (0, 1, 2):
        _, _, terminated, truncated, infos = vector.step(np.full(3, action))
        single.step(action)
    assert single.unwrapped.core.text(0) == vector.unwrapped.core.text(0)


def test_user_acts_observation_is_multi_hot_over_named_acts() -> None:
    core = DialogueCore(4)
    assert core.layout["user_act"].stop - core.layout["user_act"].start == len(USER_ACTS)
    assert core.single_observation_space.shape == (core.n_intents + 3 * core.n_slots + 14,)
    assert core.single_action_space.n == 2 * core.n_slots + 4


def test_afterstate_appends_the_act() -> None:
    env = make_vec("nlp_envs/Dialogue-v0", 2)
    observations, _ = env.reset(seed=0)
    afterstates = env.unwrapped.afterstate(observations, np.array([0, 23]))
    np.testing.assert_array_equal(afterstates[:, : observations.shape[1]], observations)
    assert afterstates[0, observations.shape[1]] == 1.0 and afterstates[1, -1] == 1.0


# ----------------------------------------------------------------------------------------- ontology
def bank() -> dict:
    return json.loads((ONTOLOGY_DIR / "bank.json").read_text(encoding="utf-8"))


def write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def test_builtin_ontology_has_the_promised_size() -> None:
    onto = load_ontology("bank")
    assert onto.n_intents >= 8 and onto.goal_count() == 886
    assert all(len(templates) >= 3 for templates in onto.slot_informs + onto.intent_informs)
    assert all(len(templates) >= 2 for templates in onto.user.values())


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d.pop("intents"), "no top-level key 'intents'"),
        (
            lambda d: d["intents"]["lost_card"]["slots"].append("pin"),
            "intent 'lost_card' key 'slots' names unknown slot 'pin'",
        ),
        (lambda d: d["intents"]["transfer_money"].pop("execute"), "intent 'transfer_money' has no key 'execute'"),
        (
            lambda d: d["intents"]["check_balance"].update(inform=[]),
            "intent 'check_balance' key 'inform' must be a non-empty",
        ),
        (
            lambda d: d["intents"]["open_account"].update(execute=["Opened {acount}."]),
            "intent 'open_account' key 'execute'.*'acount'",
        ),
        (lambda d: d["slots"]["card"].update(values=["debit card"]), "slot 'card' key 'values' has 1 value"),
        (
            lambda d: d["slots"]["amount"].update(inform=["Some money."]),
            r"slot 'amount' key 'inform'.*lacks \['value'\]",
        ),
        (lambda d: d["user"].pop("thank"), "'user' has no key 'thank'"),
        (lambda d: d.update(intents={"only": d["intents"]["lost_card"]}), ">= 2 intents"),
    ],
    ids=[
        "no-intents",
        "unknown-slot",
        "no-execute",
        "empty-inform",
        "bad-field",
        "one-value",
        "no-value-field",
        "no-user-act",
        "one-intent",
    ],
)
def test_malformed_ontology_gives_the_named_error(tmp_path: Path, mutate, pattern: str) -> None:
    data = bank()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(OntologyError, match=pattern) as raised:
        gym.make("nlp_envs/Dialogue-v0", ontology=path)
    assert path in str(raised.value) and isinstance(raised.value, ValueError)


def test_unreadable_or_missing_ontology_files(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match="not valid UTF-8 JSON"):
        load_ontology(write(tmp_path, "{ not json"))
    with pytest.raises(OntologyError, match="neither a built-in ontology"):
        load_ontology(tmp_path / "missing.json")


def test_a_custom_ontology_file_works_without_code(tmp_path: Path) -> None:
    data = bank()
    data["name"] = "pizza"
    data["slots"] = {
        "size": {"values": ["small", "large"], "request": ["What size?"], "inform": ["A {value} one."]},
        "topping": {"values": ["ham", "olives", "mushrooms"], "request": ["Topping?"], "inform": ["With {value}."]},
    }
    data["intents"] = {
        "order": {
            "slots": ["size", "topping"],
            "inform": ["I want a pizza."],
            "execute": ["A {size} {topping} pizza."],
        },
        "cancel": {"slots": ["size"], "inform": ["Cancel my order."], "execute": ["Cancelled the {size} one."]},
    }
    path = write(tmp_path, data)
    env = make_vec("nlp_envs/DialogueClean-v0", 32, ontology=path)
    assert env.single_action_space.n == 8
    env.reset(seed=0)
    results = run_first_episodes(env, oracle_policy, 20)
    assert results["success"].min() == 1.0
    assert any("pizza" in env.unwrapped.core.text(slot) for slot in range(32))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"error_rate": 0.6}, "error_rate=0.6 must be below 0.5"),
        ({"error_rate": -0.1}, "error_rate must be a probability"),
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"success_reward": float("nan")}, "success_reward must be a finite number"),
        ({"intents": "lost_card"}, "intents must be a list of intent names"),
        ({"intents": ["lost_card", "buy_bitcoin"]}, "unknown: \\['buy_bitcoin'\\]"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        gym.make("nlp_envs/Dialogue-v0", **kwargs)


@pytest.mark.parametrize("last_action", ["close", "ask"])
def test_the_last_turn_ends_the_same_way_in_single_and_vector_envs(last_action: str) -> None:
    single = gym.make("nlp_envs/DialogueEasy-v0", patience=100)
    vector = make_vec("nlp_envs/DialogueEasy-v0", 1, patience=100)
    core = single.unwrapped.core
    single.reset(seed=0)
    vector.reset(seed=0)
    actions = [core.ASK] * (core.max_turns - 1) + [core.CLOSE if last_action == "close" else core.ASK]
    for step, action in enumerate(actions, start=1):
        _, reward, terminated, truncated, _ = single.step(action)
        _, rewards, vector_terminated, vector_truncated, _ = vector.step(np.array([action]))
        assert (terminated, truncated) == (vector_terminated[0], vector_truncated[0])
        assert reward == rewards[0]
        assert (terminated or truncated) == (step == core.max_turns)
    assert terminated == (last_action == "close")


def test_the_users_acts_are_evidence_about_the_intent() -> None:
    env = gym.make("nlp_envs/DialogueNoisy-v0")
    core = env.unwrapped.core
    env.reset(seed=2)
    intent = int(core.user.goal_intent[0])
    needed = np.flatnonzero(core.required[intent])
    unneeded = np.flatnonzero(~core.required[intent])
    observation, *_ = env.step(1 + int(unneeded[0]))  # "that doesn't apply": no intent needing that slot
    belief = observation[core.layout["intent"]]
    assert belief[core.required[:, unneeded[0]]].max() == 0.0
    observation, *_ = env.step(1 + int(needed[0]))  # an answer: only intents needing that slot
    belief = observation[core.layout["intent"]]
    assert belief[~core.required[:, needed[0]]].max() == 0.0
    assert belief[intent] > 0.0
    np.testing.assert_allclose(belief.sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_single_env_text_from_its_history_equals_the_replayed_text(seed: int) -> None:
    env = gym.make("nlp_envs/DialogueNoisy-v0", p_change=0.5)
    core = env.unwrapped.core
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(12):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(core.EXECUTE + 1)))
        if terminated or truncated:
            break
    recorded = core.text(0)
    history, core._history = core._history, None  # force the replay path
    assert core.text(0) == recorded
    core._history = history


def test_template_draws_are_the_keyed_integers_of_each_turn_and_salt() -> None:
    # The text's template choices, drawn for a block of turns in one call, are the counter-based
    # integers of (key, turn, 7919 + salt), also past the first block and for every salt used.
    key = np.array([0x1234_5678_9ABC_DEF0], dtype=np.uint64)
    draws = TemplateDraws(key)
    templates = [f"t{index}" for index in range(7)]
    for turn in (0, 1, TemplateDraws.BLOCK - 1, TemplateDraws.BLOCK, 3 * TemplateDraws.BLOCK + 2, 0):
        for salt in TEMPLATE_SALTS:
            expected = int(random_integers(key, len(templates), turn, 7919 + salt)[0])
            assert pick(templates, draws.hashes(turn), salt) == templates[expected]


@pytest.mark.parametrize("env_id", ["nlp_envs/Dialogue-v0", "nlp_envs/DialogueEasy-v0"])
def test_decoded_desk_acts_follow_the_action_table(env_id: str) -> None:
    # The act table (one gather per step) gives each action its kinds and slot as the docstring's
    # action table says: 0 asks, 1 + k requests slot k, n_slots + 1 + k confirms it, then execute,
    # hand off, close.
    core = gym.make(env_id).unwrapped.core
    n = core.n_slots
    actions = np.arange(core.n_actions)
    core._rows = actions  # decode every action at once (the rows are only used for indexing)
    desk = core._decode(actions, np.ones(len(actions), dtype=bool))
    request, confirm = (actions >= 1) & (actions <= n), (actions > n) & (actions <= 2 * n)
    expected = {
        "ask": actions == 0,
        "request": request,
        "confirm": confirm,
        "asks_slot": request | confirm,
        "execute": actions == 2 * n + 1,
        "handoff": actions == 2 * n + 2,
        "close": actions == 2 * n + 3,
        "ending": actions >= 2 * n + 2,
        "staying": actions < 2 * n + 2,
        "talking": actions <= 2 * n,
    }
    for kind, mask in expected.items():
        np.testing.assert_array_equal(getattr(desk, kind), mask, err_msg=kind)
    np.testing.assert_array_equal(desk.slot[request], actions[request] - 1)
    np.testing.assert_array_equal(desk.slot[confirm], actions[confirm] - n - 1)
    assert ((desk.slot >= 0) & (desk.slot < n)).all()
    # In a call that is over or done an act is of no kind: nothing in the turn reads it.
    over = core._decode(actions, np.zeros(len(actions), dtype=bool))
    for kind in expected:
        assert not getattr(over, kind).any(), kind


@pytest.mark.parametrize("n", [5, TurnDraws.SMALL + 1])
def test_turn_draws_are_each_turns_uniforms_across_blocks(n: int) -> None:
    # The draws kept for a block of turns (small batches) are those hashed for each turn, also for
    # slots that move through the blocks at different paces (or stay: a call that is over keeps its turn).
    keys = np.array([3, 1 << 40, 12345, (1 << 64) - 1, *range(77, 77 + n - 4)], dtype=np.uint64)
    rows, paces = np.arange(n), np.arange(n) % 8
    draws = TurnDraws(n)
    assert draws.blocks == (n <= TurnDraws.SMALL)
    draws.fill(rows, keys, np.zeros(len(keys), dtype=np.int64))
    for step in range(3 * TurnDraws.BLOCK):
        turn = step * paces // 2
        np.testing.assert_array_equal(draws.take(keys, turn), uniforms(keys, TURN_STREAM, turn, 1))


def test_episode_uniforms_are_the_goal_and_first_turn_uniforms() -> None:
    # The single env hashes an episode's goal draws and its first block of turn draws in one call:
    # the same numbers as hashing each stream on its own.
    keys = np.array([3, 1 << 40, (1 << 64) - 1], dtype=np.uint64)
    goal, turns = episode_uniforms(keys, 5)
    np.testing.assert_array_equal(goal, uniforms(keys, GOAL_STREAM, 0, 5))
    assert turns.shape == (3, TurnDraws.BLOCK, 4)
    for turn in range(TurnDraws.BLOCK):
        np.testing.assert_array_equal(turns[:, turn], uniforms(keys, TURN_STREAM, turn, 1))


def test_single_env_begins_with_the_draws_of_a_batch() -> None:
    # Both begin paths (one hash call for a small batch, one per stream for a large one) start the
    # same episodes: the same goals, user and first turn draws.
    keys = np.array([11, 1 << 50], dtype=np.uint64)
    small, large = DialogueCore(2), DialogueCore(TurnDraws.SMALL + 1)
    assert small.turn_draws.blocks and not large.turn_draws.blocks
    slots = np.arange(2)
    small.begin(slots, keys)
    large.begin(slots, keys)
    for name in ("goal_intent", "goal_values", "change_turn", "change_slot", "change_value", "told", "acts"):
        np.testing.assert_array_equal(getattr(small.user, name), getattr(large.user, name)[:2], err_msg=name)
    np.testing.assert_array_equal(small.belief.intent_belief, large.belief.intent_belief[:2])
    turn = np.zeros(2, dtype=np.int64)
    np.testing.assert_array_equal(small.turn_draws.take(keys, turn), uniforms(keys, TURN_STREAM, turn, 1))


def test_joined_puts_parts_end_to_end_and_skips_empty_ones() -> None:
    empty, a, b = np.zeros(0, np.int64), np.array([1, 2]), np.array([3])
    assert joined([empty, a, empty]) is a  # one part with items: no copy
    np.testing.assert_array_equal(joined([a, empty, b]), [1, 2, 3])
    both_empty = joined([empty, empty])
    assert both_empty.shape == (0,) and both_empty.dtype == np.int64


def test_desk_turn_kinds_are_the_rows_of_the_kind_table() -> None:
    # _decode passes the kind table's rows positionally: DeskTurn's kind fields follow DESK_KINDS.
    assert DeskTurn._fields[2 : 2 + len(DESK_KINDS)] == DESK_KINDS
    n_actions = DialogueCore(1).n_actions
    core = DialogueCore(n_actions)  # one slot per action, every call live
    desk = core._decode(np.arange(n_actions), np.ones(n_actions, dtype=bool))
    for row, name in enumerate(DESK_KINDS):
        np.testing.assert_array_equal(getattr(desk, name), core.desk_acts.kind_table[row], err_msg=name)


def test_a_drawn_begin_row_is_the_draw_of_its_key_alone() -> None:
    # The single env draws its next episodes ahead in one batch (TaskCore.draw_begins): row i must be,
    # bit for bit, what keys[i] alone gives, with changed minds, volunteered values and misheard ones.
    core = DialogueCore(1, error_rate=0.4, p_change=0.5, p_volunteer=0.9)
    keys = np.array([3, 1 << 40, (1 << 64) - 1, *range(77, 98)], dtype=np.uint64)
    batch = core.draw_begins(keys)
    assert (batch.users.change_turn < NEVER).any() and (batch.users.change_turn == NEVER).any()
    assert (batch.opening_heard[:, 1] >= 0).any() and (batch.opening_conf[:, 0] < 0.5).any()
    for row in range(len(keys)):
        alone = core.draw_begins(keys[row : row + 1])
        for index, (rows, own) in enumerate(zip(_drawn_arrays(batch), _drawn_arrays(alone), strict=True)):
            np.testing.assert_array_equal(rows[row], own[0], err_msg=f"array {index}")


@pytest.mark.parametrize("n", [1, 5])
def test_the_kept_observation_and_mask_are_those_of_the_state(n: int) -> None:
    # The core keeps its observation (and mask) and each update writes what it changes: at every step
    # they equal the ones made afresh from the state, through changed minds, hang-ups and restarts.
    env = gym.make_vec(
        "nlp_envs/Dialogue-v0",
        num_envs=n,
        vectorization_mode="vector_entry_point",
        error_rate=0.3,
        p_change=0.9,
        p_volunteer=0.8,
    )
    core, rng = env.unwrapped.core, np.random.default_rng(0)
    env.reset(seed=4)
    for _ in range(150):
        belief, user = core.belief, core.user
        fresh = np.concatenate(
            (
                belief.intent_belief,
                belief.intent_heard[:, None],
                belief.heard,
                belief.slot_conf,
                belief.needed,
                user.acts,
                np.minimum(core.call.turn, core.max_turns)[:, None] / core.max_turns,
                np.minimum(user.useless, core.patience)[:, None] / core.patience,
            ),
            axis=1,
            dtype=np.float32,
        )
        observations = core.observe()
        np.testing.assert_array_equal(observations, fresh)
        masks = core.action_masks()
        np.testing.assert_array_equal(masks, core.masks_from_observations(observations))
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in masks])
        masks[:] = observations[:] = 0  # the caller's copies: writing into them changes nothing kept
        *_, infos = env.step(actions)
        infos["action_mask"][:] = False
