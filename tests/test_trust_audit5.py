"""Inputs that slipped through earlier audits: each test pins one defect found by attacking the API and CLI.

Every case is accepted and correct, or refused with one line that names the input, what is wrong and
what is expected; messages name the id the user made, not the task's default id.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import nlp_envs  # noqa: F401  (registers the ids)
from nlp_envs.arguments import KwargNameError, KwargsError
from nlp_envs.classification import ClassificationCore, TextClassificationEnv
from nlp_envs.dialogue.env import DialogueCore
from nlp_envs.registration import BUILTIN_ENVS

# One preset per task (and the presets whose id differs from their task's default id).
IDS = (
    "nlp_envs/NextWordEasy-v0",
    "nlp_envs/SentimentBandit-v0",
    "nlp_envs/DialogueNoisy-v0",
    "nlp_envs/Recommendation-v0",
    "nlp_envs/RankingEasy-v0",
    "nlp_envs/QAEasy-v0",
)
VIEWS = {
    "make": lambda env_id, **kwargs: gym.make(env_id, **kwargs),
    "vector_entry_point": lambda env_id, **kwargs: gym.make_vec(
        env_id, num_envs=2, vectorization_mode="vector_entry_point", **kwargs
    ),
    "sync": lambda env_id, **kwargs: gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", **kwargs),
}


# --- env kwargs through the Python API ------------------------------------------------------------


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("env_id", IDS)
def test_an_unknown_env_kwarg_is_one_line_naming_the_id_the_name_and_the_valid_names(env_id: str, view: str) -> None:
    with pytest.raises(TypeError) as caught:  # a TypeError, as Python's own for an unknown keyword
        VIEWS[view](env_id, noise=2.0)
    assert isinstance(caught.value, KwargsError)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{env_id} has no keyword argument 'noise'; valid ones: ")
    assert "render_mode" in message
    assert ("num_envs" in message.split(" was raised")[0]) == (view == "vector_entry_point")


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_an_unknown_env_kwarg_is_refused_before_the_task_loads_anything(view: str, monkeypatch) -> None:
    def loads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the core was built with an unknown keyword argument")

    monkeypatch.setattr(DialogueCore, "__init__", loads)
    with pytest.raises(KwargNameError, match="'slot_error_rate'"):
        VIEWS[view]("nlp_envs/Dialogue-v0", slot_error_rate=0.1)


def test_gym_make_with_num_envs_says_to_use_make_vec() -> None:
    with pytest.raises(KwargNameError) as caught:
        gym.make("nlp_envs/DialogueEasy-v0", num_envs=4)
    assert str(caught.value).startswith("nlp_envs/DialogueEasy-v0: 'num_envs' cannot be given here")
    assert "gym.make_vec(id, num_envs=N)" in str(caught.value)


def test_a_vector_only_kwarg_through_gym_make_is_named() -> None:
    with pytest.raises(KwargNameError, match=r"^nlp_envs/Dialogue-v0 has no keyword argument 'info_text'"):
        gym.make("nlp_envs/Dialogue-v0", info_text=True)


# --- messages name the id that was made -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*render_mode='human'")
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_a_construction_error_names_the_preset_made_not_the_tasks_default_id(view: str) -> None:
    with pytest.raises(ValueError, match=r"^nlp_envs/SentimentBandit-v0: split='dev' is not one of"):
        VIEWS[view]("nlp_envs/SentimentBandit-v0", split="dev")
    with pytest.raises(ValueError, match=r"^nlp_envs/DialogueNoisy-v0: render_mode='human' is not supported"):
        VIEWS[view]("nlp_envs/DialogueNoisy-v0", render_mode="human")


@pytest.mark.parametrize("spec", BUILTIN_ENVS, ids=lambda spec: spec["id"])
def test_every_core_holds_the_id_made_and_the_specs_stay_as_registered(spec: dict) -> None:
    env_id = spec["id"]
    assert gym.spec(env_id).kwargs == spec["kwargs"]
    assert gym.spec(env_id).entry_point == spec["entry_point"]
    single = gym.make(env_id)
    vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert single.unwrapped.core.env_id == vector.unwrapped.core.env_id == env_id
    assert single.spec.kwargs == spec["kwargs"]  # users print these: nothing was added to them
    assert vector.spec.kwargs == {
        **spec["kwargs"],
        "max_episode_steps": spec["max_episode_steps"],
        "num_envs": 2,
        "vectorization_mode": "vector_entry_point",
    }
    single.close()
    vector.close()


def test_a_core_error_after_construction_names_the_id_made() -> None:
    env = gym.make_vec("nlp_envs/SentimentBandit-v0", num_envs=2, vectorization_mode="vector_entry_point")
    core = env.unwrapped.core
    core.metrics = lambda slots: {"wrong": slots}  # a task that breaks its metrics contract
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"\(nlp_envs/SentimentBandit-v0\): metrics\(\) returned the keys"):
        for _ in range(3):
            env.step(env.action_space.sample())


def test_an_env_built_directly_or_by_a_users_creator_keeps_the_tasks_default_id() -> None:
    with pytest.raises(ValueError, match=r"^nlp_envs/TextClassification-v0: split='dev'"):
        TextClassificationEnv(dataset="drugreview", split="dev")

    def creator(**kwargs: object) -> gym.Env:  # a creator that builds our env itself: not made as its own id
        return TextClassificationEnv(dataset="drugreview", **kwargs)

    gym.register("audit5/Wrapped-v0", entry_point=creator)
    try:
        with pytest.raises(ValueError, match=r"^nlp_envs/TextClassification-v0: split='dev'"):
            gym.make("audit5/Wrapped-v0", split="dev")
    finally:
        del gym.registry["audit5/Wrapped-v0"]
    assert ClassificationCore(num_envs=1, dataset="drugreview").env_id == "nlp_envs/TextClassification-v0"


def test_the_config_hash_of_an_existing_suite_cell_is_unchanged() -> None:
    from nlp_envs.leaderboard.runner import cell_config_hash
    from nlp_envs.leaderboard.suites import load_suite

    cell = next(cell for cell in load_suite("smoke").cells() if cell.agent == "random" and cell.seed == 0)
    assert cell.env.id == "nlp_envs/NextWordEasy-v0"
    # Computed on main 8b576ff, before the made id reached the cores: results databases stay valid.
    assert (cell.config_hash, cell_config_hash(cell)) == ("39bd7efdb6c4081b", "550781439917cb76")
