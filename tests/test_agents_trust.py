"""Agents whose results can be trusted: refused settings, divergence, atomic saves, damaged files, masks."""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import os
import tempfile

import numpy as np
import pytest
import torch

import nlp_agents
import nlp_envs
from nlp_agents import base, plugins
from nlp_agents.base import AgentFileError, DivergedError, HyperparameterError
from nlp_envs.evaluation import agent_policy
from tests.conftest import ENV_IDS, make_vec
from tests.test_agents import FAST, make_agent

EASY = "nlp_envs/NextWordEasy-v0"
MASKED = "nlp_envs/DialogueEasy-v0"
pytestmark = pytest.mark.skipif(MASKED not in ENV_IDS, reason="DialogueEasy-v0 (an env with masks) is not registered")


def agent_names() -> list[str]:
    plugins.reset()
    names = sorted(nlp_agents.available())
    plugins.reset()
    return names


AGENTS = agent_names()
LEARNERS = [name for name in AGENTS if name != "random"]
SB3 = [name for name in AGENTS if name.startswith("sb3-") or name in ("qrdqn", "maskable-ppo")]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- 1a. hyper-parameters out of range or not finite are refused before anything is built ----------

BAD_HYPERPARAMETERS = [
    ("dqn", {"learning_rate": float("nan")}, "learning_rate=nan is not a finite number"),
    ("dqn", {"learning_rate": float("inf")}, "learning_rate=inf is not a finite number"),
    ("dqn", {"learning_rate": -0.1}, r"learning_rate must be > 0"),
    ("dqn", {"epsilon_start": 1.5}, r"epsilon_start must be in \[0, 1\]"),
    ("dqn", {"epsilon_end": -0.1}, r"epsilon_end must be in \[0, 1\]"),
    ("dqn", {"exploration_fraction": float("nan")}, "exploration_fraction=nan is not a finite number"),
    ("dqn", {"max_grad_norm": -1.0}, r"max_grad_norm must be >= 0"),
    ("dqn", {"max_grad_norm": float("inf")}, "max_grad_norm=inf is not a finite number"),
    ("dqn", {"buffer_size": 2**40}, r"buffer_size must be >= 1 and <= 2147483647"),
    ("dqn", {"batch_size": True}, "batch_size=True has type bool; expected int"),
    ("dqn", {"hidden_sizes": [64, 0]}, r"hidden_sizes must be >= 1.*got \(64, 0\) \(item 0\)"),
    ("dqn", {"torch_threads": 10**6}, r"torch_threads must be in \[0, \d+\]"),
    ("dqn", {"learning_starts": -1}, r"learning_starts must be >= 0"),
    ("vlearner", {"learning_rate": float("nan")}, "learning_rate=nan is not a finite number"),
    ("vlearner", {"td_lambda": 1.01}, r"td_lambda must be in \[0, 1\]"),
    ("vlearner", {"embedding_dim": 0}, r"embedding_dim must be >= 1"),
    ("vlearner", {"torch_threads": -1}, r"torch_threads must be in \[0, \d+\]"),
    ("qtable", {"learning_rate": float("inf")}, "learning_rate=inf is not a finite number"),
    ("qtable", {"initial_value": float("-inf")}, "initial_value=-inf is not a finite number"),
    ("qtable", {"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\]"),
    ("qtable", {"max_table_size": 0}, r"max_table_size must be >= 1"),
    ("sb3-ppo", {"learning_rate": float("nan")}, "learning_rate=nan is not finite"),
    ("sb3-ppo", {"n_steps": 0}, r"n_steps must be >= 1"),
    ("sb3-ppo", {"gae_lambda": 2.0}, r"gae_lambda must be in \[0, 1\]"),
    ("sb3-a2c", {"learning_rate": float("inf")}, "learning_rate=inf is not finite"),
    ("sb3-a2c", {"max_grad_norm": 0.0}, r"max_grad_norm must be > 0"),
    ("sb3-a2c", {"policy_kwargs": {"net_arch": [64], "ortho_init": False, "x": float("nan")}}, "not finite"),
    ("sb3-dqn", {"exploration_final_eps": -0.5}, r"exploration_final_eps must be in \[0, 1\]"),
    ("sb3-dqn", {"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
    ("sb3-dqn", {"torch_threads": 10**6}, r"torch_threads must be in \[0, \d+\]"),
    ("sb3-dqn", {"train_freq": 0}, r"train_freq must be >= 1"),
    ("sb3-ppo", {"policy": "NoSuchPolicy"}, "Stable-Baselines3 refused these hyper-parameters"),
    ("qrdqn", {"learning_rate": float("nan")}, "learning_rate=nan is not finite"),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"), BAD_HYPERPARAMETERS, ids=[f"{n}-{next(iter(k))}" for n, k, _ in BAD_HYPERPARAMETERS]
)
def test_bad_hyperparameters_are_one_named_line(name: str, kwargs: dict, pattern: str) -> None:
    with pytest.raises(HyperparameterError, match=pattern) as caught:
        nlp_agents.make(name, make_vec(EASY), device="cpu", **kwargs)
    assert one_line(caught.value).startswith(f"{name}: ")


def test_every_numeric_field_of_the_built_in_configs_has_a_range() -> None:
    from nlp_agents.bc import BCConfig
    from nlp_agents.cql import CQLConfig
    from nlp_agents.dqn import DQNConfig
    from nlp_agents.iqn import IQNConfig
    from nlp_agents.qtable import QTableConfig
    from nlp_agents.vlearner import VLearnerConfig

    for config in (DQNConfig, QTableConfig, VLearnerConfig, IQNConfig, CQLConfig, BCConfig):
        for item in dataclasses.fields(config):
            if item.type in ("int", "float", "tuple[int, ...]") and item.name != "initial_value":
                assert isinstance(item.metadata.get("range"), base.Range), (config.__name__, item.name)


# --- 1b. what cannot fit in memory is refused with the figure and the limit -------------------------


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("dqn", {"buffer_size": 2_000_000_000}),
        ("dqn", {"hidden_sizes": [200_000, 200_000]}),
        ("vlearner", {"embedding_dim": 2_000_000_000}),
        ("sb3-dqn", {"buffer_size": 2_000_000_000}),
        ("sb3-ppo", {"n_steps": 2_000_000_000}),
        ("sb3-a2c", {"policy_kwargs": {"net_arch": [500_000, 500_000]}}),
    ],
)
def test_configurations_that_cannot_fit_are_refused_with_the_figures(name: str, kwargs: dict, monkeypatch) -> None:
    monkeypatch.setattr(base, "available_memory", lambda device=None: (8 * 2**30, "test limit"))
    with pytest.raises(HyperparameterError, match=r"needs about [\d.]+ [GTP]iB .* only 8\.0 GiB is available"):
        nlp_agents.make(name, make_vec(EASY), device="cpu", **kwargs)


def test_a_q_table_that_cannot_fit_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(base, "available_memory", lambda device=None: (1024, "test limit"))
    with pytest.raises(HyperparameterError, match=r"qtable: .*Q table .* only 1\.0 KiB is available \(test limit\)"):
        nlp_agents.make("qtable", make_vec(EASY))


def test_available_memory_is_reported() -> None:
    amount, source = base.available_memory()
    assert amount > 0 and source


# --- 1c. a run whose loss or weights become non-finite stops with DivergedError ---------------------


@pytest.mark.parametrize("name", ["dqn", "vlearner"])
def test_a_huge_learning_rate_diverges_with_a_named_error(name: str) -> None:
    agent = nlp_agents.make(name, make_vec(EASY), device="cpu", learning_rate=1e30, **FAST[name])
    with pytest.raises(DivergedError, match=rf"^diverged: {name} at step \d+: .*became non-finite") as caught:
        agent.learn(2_000)
    assert isinstance(caught.value, RuntimeError) and nlp_agents.DivergedError is DivergedError
    one_line(caught.value)


def poison(agent) -> None:
    """Put a NaN in the agent's weights, as a diverged update would."""
    if hasattr(agent, "table"):
        agent.table[:] = np.inf
        return
    module = agent.model.policy if hasattr(agent, "model") else agent.network
    with torch.no_grad():
        next(module.parameters()).fill_(float("nan"))


@pytest.mark.parametrize("name", LEARNERS)
def test_weights_that_become_non_finite_stop_the_run(name: str) -> None:
    agent = make_agent(name, make_vec(EASY), device="cpu", seed=0)

    def callback(agent, steps):
        if steps >= 128:
            poison(agent)

    with pytest.raises(DivergedError, match=rf"^diverged: {name} at step \d+: (weight|the \w)"):
        agent.learn(3_000, callback=callback)


@pytest.mark.parametrize("name", LEARNERS)
def test_save_refuses_non_finite_weights_and_writes_nothing(name: str, tmp_path) -> None:
    agent = make_agent(name, make_vec(EASY), device="cpu")
    poison(agent)
    with pytest.raises(DivergedError, match=rf"^diverged: {name} has non-finite weights .*nothing was written"):
        agent.save(tmp_path / "agent.pt")
    assert list(tmp_path.iterdir()) == []


# --- 2. saving is atomic ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qtable", "dqn", "sb3-a2c"])
def test_a_full_disk_leaves_the_old_checkpoint_intact(name: str, tmp_path, monkeypatch) -> None:
    env = make_vec(EASY)
    agent = nlp_agents.make(name, env, device="cpu", seed=1, **FAST[name]).learn(300)
    path = agent.save(tmp_path / "agent.pt")
    before = path.read_bytes()
    observations = np.array([env.single_observation_space.sample() for _ in range(32)])
    expected = agent.predict(observations)
    agent.learn(300)
    real_save = torch.save

    def full_disk(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(100)  # half a file is on the disk when it fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left on device.*previous file is unchanged") as caught:
        agent.save(path)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["agent.pt"]
    np.testing.assert_array_equal(nlp_agents.load(path, make_vec(EASY), device="cpu").predict(observations), expected)


@pytest.mark.parametrize("name", SB3)
def test_sb3_agents_leave_nothing_in_the_temp_dir(name: str, tmp_path, monkeypatch) -> None:
    # SB3 makes an empty SB3-<time> folder in the temp dir at each learn() unless the model has a logger.
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)  # conftest points it elsewhere, which would hide the folders
    agent = nlp_agents.make(name, make_vec(EASY), device="cpu", seed=1, **FAST[name]).learn(64).learn(64)
    path = agent.save(tmp_path / "agent.pt")
    nlp_agents.load(path, make_vec(EASY), device="cpu").learn(64)
    assert [entry.name for entry in temp.iterdir() if entry.name.startswith("SB3-")] == []


def test_check_writable_refuses_before_training(tmp_path) -> None:
    assert nlp_agents.check_writable(tmp_path / "new" / "agent.pt") == tmp_path / "new" / "agent.pt"
    assert list(tmp_path.iterdir()) == []  # nothing created, no probe left
    with pytest.raises(AgentFileError, match="it is a folder"):
        nlp_agents.check_writable(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AgentFileError, match="is a file, not a folder"):
        nlp_agents.check_writable(tmp_path / "file" / "agent.pt")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(AgentFileError, match="is not writable"):
            nlp_agents.check_writable(locked / "agent.pt")


# --- 3. truncated, altered or ill-fitting checkpoints raise AgentFileError -----------------------------


def saved(name: str, tmp_path, env_id: str = EASY):
    env = make_vec(env_id)
    agent = make_agent(name, env, device="cpu", seed=2).learn(200)
    path = agent.save(tmp_path / f"{name}.pt")
    observations = np.array([env.single_observation_space.sample() for _ in range(16)])
    return path, observations, agent.predict(observations)


def loads_or_refuses(path, observations, expected, name: str) -> str:
    """Load ``path``: an AgentFileError, or an agent that predicts exactly as the saved one."""
    try:
        loaded = nlp_agents.load(path, make_vec(EASY), device="cpu")
    except AgentFileError as error:
        one_line(error)
        return "refused"
    if name != "random":
        np.testing.assert_array_equal(loaded.predict(observations), expected)
    return "same"


@pytest.mark.parametrize("name", AGENTS)
def test_truncated_and_flipped_checkpoints_raise_agent_file_error(name: str, tmp_path) -> None:
    path, observations, expected = saved(name, tmp_path)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.pt"
    offsets = np.unique(np.linspace(0, len(data) - 1, 24).astype(int))
    outcomes = []
    for offset in offsets:
        damaged.write_bytes(data[:offset])
        outcomes.append(loads_or_refuses(damaged, observations, expected, name))
        flipped = bytearray(data)
        flipped[offset] ^= 0x5A
        damaged.write_bytes(bytes(flipped))
        outcomes.append(loads_or_refuses(damaged, observations, expected, name))
    assert outcomes.count("refused") >= len(offsets)  # every truncation at least


def test_many_byte_flips_of_a_dqn_checkpoint(tmp_path) -> None:
    path, observations, expected = saved("dqn", tmp_path)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.pt"
    for offset in range(0, len(data), max(1, len(data) // 300)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        damaged.write_bytes(bytes(flipped))
        loads_or_refuses(damaged, observations, expected, "dqn")


def rewrite(path, edit_meta=None, edit_tensors=None) -> None:
    """Re-save ``path`` with its header or tensors edited (a valid checksum: the checks behind it are tested)."""
    meta, tensors = base.read_agent_meta(path)
    meta = {key: value for key, value in meta.items() if key != "format"}
    if edit_meta is not None:
        edit_meta(meta)
    if edit_tensors is not None:
        edit_tensors(tensors)
    path.unlink()
    base.save_agent_file(path, meta, tensors)


def first_tensor(tensors) -> str:
    return sorted(tensors)[0]


def other_dtype(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.float32 if tensor.dtype == torch.float64 else torch.float64)


HEADER_EDITS = {
    "no config": lambda meta: meta.pop("config"),
    "seed as text": lambda meta: meta.update(seed="0"),
    "negative seed": lambda meta: meta.update(seed=-3),
    "no env": lambda meta: meta.pop("env"),
    "env id a number": lambda meta: meta["env"].update(env_id=5),
    "agent a list": lambda meta: meta.update(agent=["dqn"]),
    "config of the wrong type": lambda meta: meta["config"].update(batch_size="many"),
    "config out of range": lambda meta: meta["config"].update(gamma=7.0),
    "unknown config key": lambda meta: meta["config"].update(warp=9),
}
TENSOR_EDITS = {
    "a tensor missing": lambda tensors: tensors.pop(first_tensor(tensors)),
    "an extra tensor": lambda tensors: tensors.update(extra=torch.zeros(3)),
    "a wrong shape": lambda tensors: tensors.update({first_tensor(tensors): torch.zeros(2, 2)}),
    "a wrong dtype": lambda tensors: tensors.update(
        {first_tensor(tensors): other_dtype(tensors[first_tensor(tensors)])}
    ),
}


@pytest.mark.parametrize("edit", sorted(HEADER_EDITS))
def test_a_header_with_missing_keys_or_wrong_types_is_refused(edit: str, tmp_path) -> None:
    path, *_ = saved("dqn", tmp_path)
    rewrite(path, edit_meta=HEADER_EDITS[edit])
    with pytest.raises(AgentFileError) as caught:
        nlp_agents.load(path, make_vec(EASY), device="cpu")
    assert str(path) in one_line(caught.value)


@pytest.mark.parametrize("edit", sorted(TENSOR_EDITS))
@pytest.mark.parametrize("name", ["qtable", "dqn", "vlearner", "sb3-ppo", "qrdqn"])
def test_tensors_missing_or_of_the_wrong_shape_or_dtype_are_refused(name: str, edit: str, tmp_path) -> None:
    path, *_ = saved(name, tmp_path)
    rewrite(path, edit_tensors=TENSOR_EDITS[edit])
    with pytest.raises(AgentFileError, match="does not fit this agent") as caught:
        nlp_agents.load(path, make_vec(EASY), device="cpu")
    one_line(caught.value)


def test_a_file_with_nan_weights_is_refused(tmp_path) -> None:
    path, *_ = saved("dqn", tmp_path)
    meta, tensors = base.read_agent_meta(path)
    header = json.dumps(meta, sort_keys=True)
    tensors[first_tensor(tensors)][...] = float("nan")
    torch.save({"nlp_envs_agent": header, "tensors": tensors, "sha256": base._digest(header, tensors)}, path)
    with pytest.raises(AgentFileError, match="holds NaN or inf"):
        nlp_agents.load(path, make_vec(EASY), device="cpu")


def test_files_without_a_checksum_still_load(tmp_path) -> None:
    path, observations, expected = saved("dqn", tmp_path)
    payload = torch.load(path, weights_only=True)
    del payload["sha256"]
    torch.save(payload, path)
    np.testing.assert_array_equal(nlp_agents.load(path, make_vec(EASY), device="cpu").predict(observations), expected)


# --- 4. masks are honoured, or refused when they have the wrong shape ---------------------------------


def test_every_agent_predict_takes_action_masks() -> None:
    for name in AGENTS:
        factory = nlp_agents.entry(name).factory
        cls = factory.resolve() if hasattr(factory, "resolve") else factory
        assert "action_masks" in inspect.signature(cls.predict).parameters, name


@pytest.mark.parametrize("name", ["qrdqn", "sb3-dqn"])
def test_qrdqn_never_predicts_a_masked_act(name: str) -> None:
    env = make_vec(MASKED, 8)
    agent = nlp_agents.make(name, env, device="cpu", seed=0, **FAST[name]).learn(600)
    assert agent.masks_in_observation
    observations, _ = env.reset(seed=0)
    n = env.single_action_space.n
    only = np.zeros((8, n), dtype=bool)
    only[np.arange(8), (np.arange(8) * 3) % n] = True
    for deterministic in (True, False):
        np.testing.assert_array_equal(agent.predict(observations, deterministic, action_masks=only), only.argmax(1))
    for _ in range(30):
        masks = env.unwrapped.action_masks()
        actions = agent.predict(observations, action_masks=masks)
        assert masks[np.arange(8), actions].all()
        observations, *_ = env.step(actions)


def test_qrdqn_explores_and_bootstraps_among_allowed_acts_only(monkeypatch) -> None:
    from nlp_agents.sb3 import CoreVecEnv

    taken = []
    step_async = CoreVecEnv.step_async

    def checked_step_async(self, actions):
        taken.append(self.action_masks()[np.arange(self.num_envs), np.asarray(actions)].all())
        step_async(self, actions)

    monkeypatch.setattr(CoreVecEnv, "step_async", checked_step_async)
    agent = nlp_agents.make("qrdqn", make_vec(MASKED, 8), device="cpu", seed=0, **FAST["qrdqn"]).learn(800)
    assert len(taken) >= 100 and all(taken)
    observation = {
        "observation": torch.zeros((1, *agent.vec_env.observation_space["observation"].shape)),
        "action_mask": torch.tensor([[0.0, 1.0] + [0.0] * (agent.n_actions - 2)]),
    }
    quantiles = agent.model.quantile_net_target(observation)
    assert quantiles.mean(dim=1).argmax(dim=1).item() == 1  # the target's greedy act is the allowed one


@pytest.mark.parametrize("name", AGENTS)
def test_predict_refuses_masks_of_the_wrong_shape(name: str) -> None:
    env = make_vec(EASY, 4)
    agent = make_agent(name, env, device="cpu")
    observations, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"{name}: action_masks has shape \(4, 3\)"):
        agent.predict(observations, action_masks=np.ones((4, 3), dtype=bool))


def test_evaluate_refuses_env_masks_of_the_wrong_shape() -> None:
    class Recorder:
        def predict(self, observations, deterministic=True, action_masks=None):
            return np.zeros(len(observations), dtype=np.int64)

    env = make_vec(MASKED, 4)
    observations, _ = env.reset(seed=0)
    env.unwrapped.action_masks = lambda: np.ones((3, 2), dtype=bool)
    with pytest.raises(ValueError, match=r"action_masks\(\) gave bool of shape \(3, 2\); expected booleans of shape"):
        agent_policy(Recorder())(observations, env)


def test_evaluate_scores_qrdqn_within_the_masks() -> None:
    env = make_vec(MASKED, 8)
    agent = nlp_agents.make("qrdqn", env, device="cpu", seed=0, **FAST["qrdqn"]).learn(300)
    chosen = []
    predict = agent.predict

    def recording(observations, deterministic=True, action_masks=None):
        actions = predict(observations, deterministic, action_masks)
        chosen.append(action_masks[np.arange(len(actions)), actions].all())
        return actions

    agent.predict = recording
    nlp_envs.evaluate(MASKED, agent, episodes=8)
    assert chosen and all(chosen)


def test_an_sb3_agent_that_reads_no_masks_refuses_them_rather_than_ignore_them() -> None:
    env = make_vec(EASY, 4)  # no masks: the adapter builds plain SB3 A2C
    agent = nlp_agents.make("sb3-a2c", env, device="cpu", **FAST["sb3-a2c"])
    observations, _ = env.reset(seed=0)
    only = np.zeros((4, env.single_action_space.n), dtype=bool)
    only[:, 1] = True
    with pytest.raises(ValueError, match="sb3-a2c: this agent reads no action masks"):
        agent.predict(observations, action_masks=only)
    everything = np.ones_like(only)
    assert agent.predict(observations, action_masks=everything).shape == (4,)


# --- property: any hyper-parameter value is accepted or refused with a named error, nothing else -------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def config_fields(name: str) -> list[str]:
    factory = nlp_agents.entry(name).factory
    cls = factory.resolve() if hasattr(factory, "resolve") else factory
    return [item.name for item in dataclasses.fields(cls.Config)]


@pytest.mark.parametrize("name", ["dqn", "vlearner", "qtable"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_hyperparameter_value_is_accepted_or_refused_by_name(name: str, data, monkeypatch) -> None:
    monkeypatch.setattr(base, "available_memory", lambda device=None: (256 * 2**20, "test limit"))
    field = data.draw(st.sampled_from(config_fields(name)))
    value = data.draw(ANY_VALUE)
    try:
        agent = nlp_agents.make(name, make_vec(EASY, 2), device="cpu", **{field: value})
    except (HyperparameterError, nlp_agents.UnsupportedEnvError) as error:  # e.g. a Q table over max_table_size
        assert one_line(error).startswith(f"{name}: ") and field in str(error)
        return
    if isinstance(value, float):
        assert np.isfinite(value)
    try:
        agent.learn(16)
    except DivergedError as error:  # a huge learning rate is in range and may still diverge: named
        assert one_line(error).startswith(f"diverged: {name} at step ")


@pytest.mark.parametrize("name", ["sb3-ppo", "sb3-dqn"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sb3_hyperparameter_value_is_accepted_or_refused_by_name(name: str, data, monkeypatch) -> None:
    from nlp_agents.sb3 import RANGES

    monkeypatch.setattr(base, "available_memory", lambda device=None: (256 * 2**20, "test limit"))
    accepted = nlp_agents.entry(name).factory.resolve().accepted()
    field = data.draw(st.sampled_from(sorted(set(RANGES) & set(accepted))))
    value = data.draw(ANY_VALUE)
    try:
        nlp_agents.make(name, make_vec(EASY, 2), device="cpu", **{field: value})
    except HyperparameterError as error:
        assert one_line(error).startswith(f"{name}: ")


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize("steps", [-1, 1.5, True, "16", None, float("nan"), float("inf"), base.MAX_LEARN_STEPS + 1])
def test_learn_refuses_total_timesteps_that_are_not_a_whole_number_in_range(name: str, steps: object) -> None:
    """``int()`` took "16", truncated 1.5, read True as 1 and -1 as nothing to do, and 10**23 ran for ever."""
    agent = make_agent(name, make_vec(EASY, 2))
    with pytest.raises(ValueError, match=rf"{name}: learn\(total_timesteps\) must be a whole number from 0 to "):
        agent.learn(steps)  # type: ignore[arg-type]
    assert agent.num_timesteps == 0


@pytest.mark.parametrize("steps", [np.int64(16), 16.0, 0])
def test_learn_takes_numpy_integers_and_whole_floats_as_sb3_does(steps: object) -> None:
    agent = make_agent("random", make_vec(EASY, 2))
    agent.learn(steps)  # type: ignore[arg-type]
    assert agent.num_timesteps == int(steps)  # type: ignore[call-overload]


# --- 5. a saved agent records its task's env kwargs and loads only onto the same task -------------------


@pytest.mark.parametrize("name", ["dqn", "sb3-a2c"])
def test_a_saved_agent_loads_only_where_its_env_kwargs_hold(name: str, tmp_path) -> None:
    """An agent saved on one value of an env kwarg is refused, naming it, on another (only ``split`` may
    differ); the same kwargs given explicitly, as defaults or as numpy scalars load; files without the
    record (older versions, envs made outside the registry) still load."""
    env = make_vec(EASY, beta=0.5)
    path = make_agent(name, env, device="cpu", seed=2).learn(64).save(tmp_path / f"{name}.pt")
    assert base.read_agent_meta(path)[0]["env"]["env_kwargs"]["beta"] == "0.5"
    with pytest.raises(AgentFileError, match=r"with env kwarg beta=0.5, but this env has beta=0.0") as caught:
        nlp_agents.load(path, make_vec(EASY), device="cpu")
    assert "make the env with beta=0.5 (of the env kwargs only split may differ)" in one_line(caught.value)
    for same in ({"beta": np.float64(0.5)}, {"beta": 0.5, "split": "train"}, {"beta": 0.5, "vocab_size": 12}):
        nlp_agents.load(path, make_vec(EASY, **same), device="cpu")
    rewrite(path, edit_meta=lambda meta: meta["env"].pop("env_kwargs"))
    nlp_agents.load(path, make_vec(EASY), device="cpu")


def test_damaged_env_kwargs_in_a_file_are_refused(tmp_path) -> None:
    path, *_ = saved("qtable", tmp_path)
    rewrite(path, edit_meta=lambda meta: meta["env"].update(env_kwargs={"beta": 0.5}))
    with pytest.raises(AgentFileError, match="env_kwargs that are not a map of texts") as caught:
        nlp_agents.load(path, make_vec(EASY), device="cpu")
    one_line(caught.value)
