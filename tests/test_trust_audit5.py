"""Inputs that slipped through earlier audits: each test pins one defect found by attacking the API and CLI.

Every case is accepted and correct, or refused with one line that names the input, what is wrong and
what is expected; messages name the id the user made, not the task's default id.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import nlp_agents
import nlp_envs  # noqa: F401  (registers the ids)
from nlp_envs.arguments import KwargNameError, KwargsError
from nlp_envs.classification import ClassificationCore, TextClassificationEnv
from nlp_envs.cli import main
from nlp_envs.core import InvalidSeedError
from nlp_envs.dialogue.env import DialogueCore
from nlp_envs.registration import BUILTIN_ENVS
from tests.conftest import make_distribution
from tests.test_cli_errors import suite_text

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
    # Python's own words for it: TorchRL's GymEnv retries without ``frameskip`` on "unexpected keyword argument".
    assert message.startswith(f"{env_id}: got an unexpected keyword argument 'noise'; valid ones: ")
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
    with pytest.raises(KwargNameError, match=r"^nlp_envs/Dialogue-v0: got an unexpected keyword argument 'info_text'"):
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


# --- a plugin factory that returns no agent ---------------------------------------------------------

NOT_AN_AGENT_PLUGIN = """
    from nlp_agents import hookimpl

    class NoSave:
        def learn(self, total_timesteps, callback=None):
            return self

        def predict(self, observation, deterministic=True):
            return observation

    class NoPredict:
        def learn(self, total_timesteps, callback=None):
            return self

    RETURNS = {"none": None, "dict": {"learn": 1}, "nopredict": NoPredict(), "nosave": NoSave()}

    @hookimpl
    def register_agents(register):
        for name, value in RETURNS.items():
            register(name, lambda env, *, seed=0, device="auto", _value=value, **kwargs: _value)
"""


@pytest.fixture
def not_an_agent_plugin(tmp_path, monkeypatch, fresh_plugins) -> None:
    """An installed plugin ``odd-plugin``: agents ``none``, ``dict`` and ``nopredict`` return no agent, ``nosave``
    one that cannot save."""
    make_distribution(tmp_path, "odd-plugin", {"odd": "nlp_envs_test_odd"}, {"nlp_envs_test_odd": NOT_AN_AGENT_PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize(
    ("name", "returned", "missing"),
    [
        ("none", "None of type NoneType", "learn, predict methods"),
        ("dict", "{'learn': 1} of type dict", "learn, predict methods"),
        ("nopredict", "of type NoPredict", "predict method"),
    ],
)
def test_a_factory_that_returns_no_agent_is_one_line_naming_the_plugin(
    not_an_agent_plugin, name: str, returned: str, missing: str
) -> None:
    env = gym.make_vec("nlp_envs/DialogueEasy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(nlp_agents.AgentFactoryError) as caught:
        nlp_agents.make(name, env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"agent {name!r} (plugin 'odd' of odd-plugin 0.1): its factory returned ")
    assert returned in message and f"which has no {missing};" in message
    assert "expected an agent with learn(total_timesteps)" in message and "NLP_ENVS_BLOCK_PLUGINS=odd" in message


def test_train_with_a_factory_that_returns_no_agent_is_one_line(not_an_agent_plugin, capsys) -> None:
    code = main(["train", "--agent", "none", "--env", "nlp_envs/DialogueEasy-v0", "--steps", "8"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        "nlp-envs: error: agent 'none' (plugin 'odd' of odd-plugin 0.1): its factory returned None"
    )


def test_train_save_with_an_agent_that_cannot_save_is_refused_before_training(not_an_agent_plugin, tmp_path, capsys):
    saved = tmp_path / "agent.pt"
    argv = ["train", "--agent", "nosave", "--env", "nlp_envs/DialogueEasy-v0", "--steps", "8", "--save", str(saved)]
    code = main(argv)
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"nlp-envs: error: --save {saved}: agent 'nosave' (odd-plugin 0.1) has no save(path) method; train without "
        "--save, or use an agent that saves."
    )
    assert "training" not in captured.out and not saved.exists()


# --- reset seeds and options, afterstates ------------------------------------------------------------

EASY_DIALOGUE = "nlp_envs/DialogueEasy-v0"


@pytest.fixture(scope="module")
def views() -> tuple[gym.Env, gym.vector.VectorEnv]:
    """A single env (through gym.make's wrappers) and a native vector env of three slots."""
    return gym.make(EASY_DIALOGUE), gym.make_vec(EASY_DIALOGUE, num_envs=3, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize(
    ("seed", "named"),
    [
        (-1, "seed must be an integer >= 0, got -1"),
        (True, "True"),
        (1.5, "1.5"),
        (np.float64(2.0), "2.0"),
        ("3", "'3'"),
        (b"ab", "b'ab'"),
    ],
    ids=["negative", "bool", "float", "numpy-float", "str", "bytes"],
)
@pytest.mark.parametrize("view", ["single", "vector"])
def test_a_bad_reset_seed_is_one_line_naming_the_env(views, view: str, seed: object, named: str) -> None:
    env = views[view == "vector"]
    with pytest.raises(InvalidSeedError) as caught:
        env.reset(seed=seed)
    message = str(caught.value)
    assert message.startswith(f"{EASY_DIALOGUE}: ") and named in message and "\n" not in message
    assert isinstance(caught.value, gym.error.Error)  # as Gymnasium's own seed errors are


@pytest.mark.parametrize(
    ("seeds", "named"),
    [
        ([1, -2, None], "seed[1] must be an integer >= 0, got -2"),
        ([1.5, 2, 3], "seed[0] must be an integer >= 0, got 1.5"),
        ("abc", "reset(seed='abc') is not a seed"),
        ([1, 2], "reset got 2 seeds for 3 envs"),
    ],
)
def test_a_bad_list_of_slot_seeds_names_the_slot(views, seeds: object, named: str) -> None:
    with pytest.raises(InvalidSeedError, match=re.escape(named)):
        views[1].reset(seed=seeds)


def test_numpy_and_huge_seeds_give_the_same_episodes_on_both_views() -> None:
    single = gym.make(EASY_DIALOGUE)
    vector = gym.make_vec(EASY_DIALOGUE, num_envs=2, vectorization_mode="vector_entry_point")
    for seed in (np.int64(7), np.uint64(2**64 - 1), 2**70):
        first = single.reset(seed=seed)[0]
        assert np.array_equal(first, gym.make(EASY_DIALOGUE).reset(seed=int(seed))[0])
        assert np.array_equal(vector.reset(seed=seed)[0][0], first)
        assert np.array_equal(vector.reset(seed=[seed, None])[0][0], first)
    assert np.array_equal(vector.reset(seed=np.array([7, 8]))[0], vector.reset(seed=7)[0])


@pytest.mark.parametrize("options", [[], "a", 5, ("reset_mask",)], ids=["list", "str", "int", "tuple"])
@pytest.mark.parametrize("view", ["single", "vector"])
def test_reset_options_that_are_not_a_dict_are_named(views, view: str, options: object) -> None:
    env = views[view == "vector"]
    with pytest.raises(TypeError, match=rf"^{EASY_DIALOGUE}: reset\(options=.*\) must be None or a dict, got "):
        env.reset(options=options)


def test_a_refused_reset_does_not_reseed_the_env() -> None:
    env = gym.make(EASY_DIALOGUE)
    env.reset(seed=3)
    state = env.unwrapped.np_random.bit_generator.state
    with pytest.raises(ValueError, match="reset options"):
        env.reset(seed=5, options={"bogus": 1})
    assert env.unwrapped.np_random.bit_generator.state == state


@pytest.mark.parametrize(
    ("observations", "actions", "named"),
    [
        (lambda o: o[:, :3], [0, 1], "got observations of shape (2, 3)"),
        (lambda o: o[0], 1, "got observations of shape (36,)"),
        (lambda o: o, [0, 1, 2], "action has shape (3,); expected an integer array of shape (2,)"),
        (lambda o: o, [[0, 1]], "action has shape (1, 2); expected an integer array of shape (2,)"),
    ],
    ids=["narrow-observations", "one-observation", "too-many-actions", "nested-actions"],
)
def test_afterstate_of_mismatched_observations_or_actions_is_refused_by_name(observations, actions, named) -> None:
    env = gym.make_vec(EASY_DIALOGUE, num_envs=2, vectorization_mode="vector_entry_point")
    batch, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"^{EASY_DIALOGUE}: .*{re.escape(named)}"):
        env.unwrapped.afterstate(observations(batch), actions)
    assert env.unwrapped.afterstate(batch[:1], [3]).shape == (1, *env.unwrapped.core.afterstate_space.shape)


# --- data arguments: wrong types and options a named dataset would ignore ---------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"ontology": [1]}, "ontology=[1] is not an ontology; expected a built-in name ('bank',)"),
        ({"ontology": None}, "ontology=None is not an ontology"),
        ({"intents": 2.5}, "intents must be None or a list of intent names (strings) of the ontology, got 2.5"),
        ({"intents": [1, 2]}, "intents must be None or a list of intent names (strings) of the ontology, got [1, 2]"),
    ],
    ids=["ontology-list", "ontology-none", "intents-float", "intents-ints"],
)
def test_dialogue_data_arguments_of_the_wrong_type_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^nlp_envs/DialogueNoisy-v0: {re.escape(named)}"):
        gym.make("nlp_envs/DialogueNoisy-v0", **kwargs)
    assert gym.make("nlp_envs/DialogueNoisy-v0", intents=np.array(["lost_card", "check_balance"])).unwrapped


@pytest.mark.parametrize(
    ("env_id", "kwargs", "named"),
    [
        ("nlp_envs/Sentiment-v0", {"text_column": "body"}, "text_column='body'"),
        ("nlp_envs/TextClassification-v0", {"label_column": "topic"}, "label_column='topic'"),
        ("nlp_envs/QAEasy-v0", {"question_column": "q"}, "question_column='q'"),
        ("nlp_envs/QA-v0", {"pairs": "both", "answer_column": "reply"}, "answer_column='reply'"),
    ],
)
def test_a_column_name_given_with_a_named_dataset_is_refused_not_ignored(env_id: str, kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{env_id}: {re.escape(named)} names a column of a dataset file, but "):
        gym.make(env_id, **kwargs)


def test_a_default_column_name_with_a_named_dataset_is_accepted() -> None:
    assert gym.make("nlp_envs/SentimentBandit-v0", text_column="text", label_column="label").unwrapped
    assert gym.make("nlp_envs/QAEasy-v0", question_column="question", answer_column="answer").unwrapped


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        (
            {"catalog": "ml-1m"},
            "catalog='ml-1m' is not the built-in 'ml-100k', so it is taken as the path of your "
            "catalog file, and ratings=PATH is needed too",
        ),
        ({"ratings": "r.csv"}, "ratings='r.csv' was given with catalog='ml-100k'"),
    ],
)
def test_recommendation_catalog_and_ratings_that_do_not_go_together_name_the_env(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^nlp_envs/Recommendation-v0: {re.escape(named)}"):
        gym.make("nlp_envs/Recommendation-v0", **kwargs)


# --- the vector env's own settings where a caller sets them -----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"autoreset_mode": "SameStep"}, "'autoreset_mode' cannot be given here: evaluate counts each episode once"),
        ({"num_envs": 3}, "'num_envs' cannot be given here: episode i plays in slot i of one vector env"),
        ({"vectorization_mode": "sync"}, "'vectorization_mode' cannot be given here"),
        ({"noise": 1}, "nlp_envs/DialogueEasy-v0 has no keyword argument 'noise'; valid ones: "),
    ],
    ids=["autoreset_mode", "num_envs", "vectorization_mode", "unknown"],
)
def test_evaluate_refuses_env_kwargs_it_sets_itself_by_name(kwargs: dict, named: str) -> None:
    with pytest.raises(KwargsError, match=rf"^env_kwargs: {re.escape(named)}"):  # was a KeyError or a bare TypeError
        nlp_envs.evaluate(EASY_DIALOGUE, "rule", episodes=4, env_kwargs=kwargs)


def test_evaluate_names_an_env_id_that_is_not_a_string() -> None:
    with pytest.raises(TypeError, match=r"^env_id must be a registered id \(a str\), got 5; "):
        nlp_envs.evaluate(5, "random", episodes=2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "command",
    [
        ["play", EASY_DIALOGUE],
        ["train", "--agent", "random", "--env", EASY_DIALOGUE, "--steps", "16", "--eval-episodes", "2"],
    ],
)
def test_the_cli_refuses_an_autoreset_mode_in_env_kwargs_before_running(command: list[str], capsys) -> None:
    code = main([*command, "--env-kwargs", '{"autoreset_mode": "SameStep"}'])
    captured = capsys.readouterr()
    assert code == 2 and "training" not in captured.out  # play crashed with KeyError, train failed after training
    assert captured.err.strip() == (
        "nlp-envs: error: --env-kwargs: 'autoreset_mode' cannot be given here: the command sets it; remove it from "
        "--env-kwargs."
    )


def test_a_suite_cannot_set_the_autoreset_mode(tmp_path, capsys) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(suite_text(env_extra='kwargs = { autoreset_mode = "SameStep" }'))
    db = tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db)]) == 2
    assert "kwargs: 'autoreset_mode' cannot be given here: the runner sets it" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--address", "10.0.0.1:6379"],
            "--address 10.0.0.1:6379 is for --executor ray; the local executor runs no Ray "
            "cluster: add --executor ray, or remove --address.",
        ),
        (
            ["--executor", "ray", "--jobs", "2"],
            "--jobs 2 is for the local executor; with --executor ray, Ray places the "
            "cells on its workers: remove --jobs, or drop --executor ray.",
        ),
    ],
    ids=["address-without-ray", "jobs-with-ray"],
)
def test_bench_refuses_a_flag_its_executor_would_ignore(flags: list[str], expected: str, tmp_path, capsys) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(suite_text())
    db = tmp_path / "r.sqlite"
    assert main(["bench", "--suite", str(suite), "--db", str(db), *flags]) == 2  # ran the whole suite locally
    assert capsys.readouterr().err.strip() == f"nlp-envs: error: {expected}"
    assert not db.exists()


@pytest.mark.parametrize("seed", [1.5, True, "3", -1], ids=["float", "bool", "str", "negative"])
def test_the_sb3_adapter_refuses_a_seed_it_would_have_truncated(seed: object) -> None:
    from nlp_envs.sb3 import make_vec_env

    env = make_vec_env(EASY_DIALOGUE, n_envs=2)
    with pytest.raises(InvalidSeedError, match=rf"^{EASY_DIALOGUE}: seed must be an integer >= 0, got "):
        env.seed(seed)  # 1.5 and True were taken as seed 1 at the next reset
    assert env.seed(np.int64(3)) == [3, 4]
    assert np.array_equal(env.reset(), make_vec_env(EASY_DIALOGUE, n_envs=2, seed=3).reset())


def test_the_sb3_adapter_refuses_reset_options_that_are_not_dicts_when_they_are_set() -> None:
    from nlp_envs.sb3 import make_vec_env

    env = make_vec_env(EASY_DIALOGUE, n_envs=2)
    with pytest.raises(TypeError, match=rf"^{EASY_DIALOGUE}: reset\(options=5\) must be None or a dict"):
        env.set_options(5)  # type: ignore[arg-type]
    env.set_options({})
    assert env.reset().shape[0] == 2


def test_a_plugin_core_that_takes_any_keyword_gets_its_kwargs_unchecked() -> None:
    from nlp_envs.dialogue.env import DialogueEnv

    class OpenCore(DialogueCore):
        def __init__(self, num_envs: int, **kwargs: object) -> None:  # the accepted names cannot be known
            super().__init__(num_envs, **kwargs)  # type: ignore[arg-type]

    class OpenEnv(DialogueEnv):
        core_class = OpenCore

    gym.register("audit5/Open-v0", entry_point=OpenEnv)
    try:
        env = gym.make("audit5/Open-v0", error_rate=0.1)
        assert env.unwrapped.core.env_id == "audit5/Open-v0" and env.unwrapped.core.error_rate == 0.1
    finally:
        del gym.registry["audit5/Open-v0"]


def test_reference_policy_lookups_name_a_bad_env_id_or_policy_name() -> None:
    with pytest.raises(TypeError, match=r"^env_id must be a registered id \(a str\), got 5; "):
        nlp_envs.reference_policies(5)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match=r"has no reference policy \['rule'\]; its policies are \['oracle', 'random', "):
        nlp_envs.reference_policy(EASY_DIALOGUE, ["rule"])  # type: ignore[arg-type]  (was: unhashable type)


@pytest.mark.parametrize(
    ("figures", "named"),
    [
        (("1", 0.0, 1.0), "mean_return must be a real number, got '1'"),
        ((0.5, None, 1.0), "random_return must be a real number, got None"),
        ((0.5, 0.0, True), "oracle_return must be a real number, got True"),
    ],
)
def test_normalized_score_names_a_figure_that_is_not_a_number(figures: tuple, named: str) -> None:
    from nlp_envs.evaluation import normalized_score

    with pytest.raises(TypeError, match=rf"^normalized_score: {re.escape(named)}\.$"):  # was numpy's isfinite error
        normalized_score(*figures)
    assert normalized_score(np.float32(0.5), np.int64(0), 1) == 0.5
