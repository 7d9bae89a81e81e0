"""The agents: every agent x every env, save/load, seeds, masks, learning, and the pieces of the updates."""

from __future__ import annotations

import functools
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

import nlp_agents
import nlp_envs
from nlp_agents import plugins
from nlp_agents.base import AgentFileError, UnsupportedEnvError, env_name, has_masks
from nlp_envs.evaluation import agent_policy
from tests.conftest import ENV_IDS, collect_transitions, make_vec

EASY = "nlp_envs/NextWordEasy-v0"
MASKED = "nlp_envs/DialogueEasy-v0" if "nlp_envs/DialogueEasy-v0" in ENV_IDS else None

# Small settings so that a few hundred steps exercise every code path (updates included).
FAST = {
    "random": {},
    "qtable": {},
    "dqn": {"learning_starts": 64, "batch_size": 32},
    "vlearner": {"rollout_steps": 8},
    "sb3-a2c": {"n_steps": 8},
    "sb3-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "sb3-dqn": {"learning_starts": 64, "batch_size": 32},
    "qrdqn": {"learning_starts": 64, "batch_size": 32, "policy_kwargs": {"n_quantiles": 5, "net_arch": [32]}},
    "maskable-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "iqn": {"learning_starts": 64, "batch_size": 32, "n_taus": 4},
    "bc": {"batch_size": 32},
    "cql": {"batch_size": 32},
}
HONOUR_MASKS = {"random", "qtable", "dqn", "vlearner", "maskable-ppo", "qrdqn", "iqn", "bc", "cql"}


def is_offline(name: str) -> bool:
    """Whether agent ``name`` learns from a logged dataset (its class says ``offline = True``)."""
    factory = nlp_agents.entry(name).factory
    return bool(getattr(factory.resolve() if hasattr(factory, "resolve") else factory, "offline", False))


@functools.cache
def random_logs(env_id: str):
    """A small dataset of the random policy on ``env_id`` (for agents that learn offline)."""
    return collect_transitions(env_id, "random", vector_steps=24, seed=0, num_envs=4)


def make_agent(name: str, env: gym.vector.VectorEnv, **kwargs):
    """``nlp_agents.make`` with the agent's FAST settings; an offline agent also gets the env's random logs.

    Its ``learn(n)`` then takes n gradient steps, and ``num_timesteps`` counts them.
    """
    if is_offline(name):
        kwargs.setdefault("dataset", random_logs(env_name(env)))
    return nlp_agents.make(name, env, **{**FAST.get(name, {}), **kwargs})


def agent_names() -> list[str]:
    plugins.reset()
    names = sorted(nlp_agents.available())
    plugins.reset()
    return names


AGENTS = agent_names()


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_learns_on_every_env_and_predicts_valid_actions(name: str, env_id: str) -> None:
    env = make_vec(env_id)
    try:
        try:
            agent = make_agent(name, env, seed=0, device="cpu")
        except UnsupportedEnvError as error:
            # Only a Q table may refuse an env, and it must say why (the space, or its size).
            assert name == "qtable", error
            assert "Q table needs Discrete" in str(error) or "needs a table of" in str(error)
            return
        calls = []
        agent.learn(256, callback=lambda agent, steps: calls.append(steps))
        assert agent.num_timesteps >= 256 and calls and calls[-1] >= 256
        observations, _ = env.reset(seed=123)
        actions = agent.predict(observations, deterministic=True)
        assert actions.shape == (env.num_envs,) and env.action_space.contains(actions.astype(np.int64))
        assert env.single_action_space.contains(int(agent.predict(observations[0])[0]))
        masks = env.unwrapped.action_masks()
        if name in HONOUR_MASKS and not masks.all():
            masked = agent.predict(observations, deterministic=False, action_masks=masks)
            assert masks[np.arange(env.num_envs), masked].all()
    finally:
        env.close()


@pytest.mark.parametrize("name", AGENTS)
def test_save_load_gives_the_same_predictions(name: str, tmp_path) -> None:
    env = make_vec(EASY)
    agent = make_agent(name, env, seed=3, device="cpu").learn(300)
    observations = np.array([env.single_observation_space.sample() for _ in range(64)])
    path = agent.save(tmp_path / f"{name}.pt")
    loaded = nlp_agents.load(path, make_vec(EASY), device="cpu")
    assert type(loaded) is type(agent)
    if name != "random":
        np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))
    else:
        assert loaded.predict(observations).shape == (64,)


def test_loading_a_file_of_another_agent_or_env_is_a_clear_error(tmp_path) -> None:
    env = make_vec(EASY)
    path = nlp_agents.make("qtable", env).learn(64).save(tmp_path / "qtable.pt")
    from nlp_agents.dqn import DQNAgent

    with pytest.raises(AgentFileError, match="holds a 'qtable' agent, not 'dqn'; load it with nlp_agents.load"):
        DQNAgent.load(path, env)
    dqn_path = nlp_agents.make("dqn", env, device="cpu").save(tmp_path / "dqn.pt")
    other = make_vec("nlp_envs/Sentiment-v0" if "nlp_envs/Sentiment-v0" in ENV_IDS else "nlp_envs/NextWord-v0")
    with pytest.raises(AgentFileError, match="was trained on 'nlp_envs/NextWordEasy-v0'"):
        nlp_agents.load(dqn_path, other)
    (tmp_path / "notes.txt").write_text("not an agent")
    with pytest.raises(AgentFileError, match="is not an nlp-envs agent file"):
        nlp_agents.load(tmp_path / "notes.txt", env)
    with pytest.raises(AgentFileError, match="no agent file at"):
        nlp_agents.load(tmp_path / "missing.pt", env)


class _Exploit:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_never_runs_pickled_code(tmp_path, capsys) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"nlp_envs_agent": "{}", "tensors": {}, "payload": _Exploit()}, path)
    with pytest.raises(AgentFileError, match="could not be read as weights only"):
        nlp_agents.load(path, make_vec(EASY))
    assert "pickled code ran" not in capsys.readouterr().out
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump(_Exploit(), handle)
    with pytest.raises(AgentFileError):
        nlp_agents.load(tmp_path / "plain.pkl", make_vec(EASY))
    assert "pickled code ran" not in capsys.readouterr().out


def _fingerprint(name: str, seed: int) -> np.ndarray:
    env = make_vec(EASY)
    agent = nlp_agents.make(name, env, seed=seed, device="cpu", **FAST.get(name, {})).learn(512)
    rng = np.random.default_rng(0)
    observations = np.stack([rng.integers(0, env.single_observation_space.nvec) for _ in range(200)])
    if name in ("dqn",):
        return agent.network_outputs(observations).numpy()
    if name == "vlearner":
        return agent.afterstate_values(observations)
    if name == "qtable":
        return agent.table.copy()
    if name.startswith("sb3-"):  # the trained weights: greedy actions of two seeds may well agree
        return torch.cat([p.detach().flatten() for p in agent.model.policy.parameters()]).numpy()
    return agent.predict(observations, deterministic=name != "random").astype(np.float64)


@pytest.mark.parametrize("name", ["random", "qtable", "dqn", "vlearner", "sb3-ppo", "sb3-dqn"])
def test_same_seed_same_numbers(name: str) -> None:
    first, second, other = _fingerprint(name, 7), _fingerprint(name, 7), _fingerprint(name, 8)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_sb3_agents_leave_the_global_rngs_alone() -> None:
    import random

    np.random.seed(99)
    random.seed(99)
    torch.manual_seed(99)
    before = (np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state().clone())
    nlp_agents.make("sb3-ppo", make_vec(EASY), seed=1, **FAST["sb3-ppo"]).learn(64)
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]
    assert torch.equal(torch.get_rng_state(), before[2])


@pytest.mark.parametrize(
    ("name", "steps", "hyperparams", "minimum"),
    [
        ("qtable", 40_000, {}, 0.9),
        ("dqn", 10_000, {}, 0.9),
        ("vlearner", 20_000, {}, 0.75),
    ],
)
def test_learners_beat_random_on_next_word_easy(name, steps, hyperparams, minimum) -> None:
    env = make_vec(EASY, num_envs=16)
    agent = nlp_agents.make(name, env, seed=0, device="cpu", **hyperparams).learn(steps)
    result = nlp_envs.evaluate(EASY, agent, episodes=300, seed=10**6)
    random_result = nlp_envs.evaluate(EASY, nlp_agents.make("random", env, seed=0), episodes=300, seed=10**6)
    assert random_result.normalized_score < 0.2
    assert result.normalized_score >= minimum, result.normalized_score
    assert result.mean_return > random_result.mean_return + 5.0  # returns are log-probabilities


# --- the pieces of the updates -------------------------------------------------------------------


def test_hand_written_backward_matches_autograd() -> None:
    from nlp_agents.networks import backward_into_grads, build_network, forward_with_cache

    for space in (gym.spaces.MultiDiscrete([7, 5, 3]), gym.spaces.Box(-1, 1, (6,), np.float32)):
        network = build_network(space, 4, (16, 8), 5, seed=0, device=torch.device("cpu"))
        space.seed(0)
        observations = torch.as_tensor(np.stack([space.sample() for _ in range(32)]))
        weights = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
        outputs, cache = forward_with_cache(network, observations)
        torch.testing.assert_close(outputs, network(observations))
        backward_into_grads(network, cache, weights)
        manual = [parameter.grad.clone() for parameter in network.parameters()]
        network.zero_grad()
        (network(observations) * weights).sum().backward()
        for mine, reference in zip(manual, [parameter.grad for parameter in network.parameters()], strict=True):
            torch.testing.assert_close(mine, reference)


def test_fused_adam_matches_torch_adam() -> None:
    from nlp_agents.networks import FusedAdam

    generator = torch.Generator().manual_seed(0)
    ours = [torch.randn(5, 3, generator=generator), torch.randn(3, generator=generator)]
    theirs = [tensor.clone() for tensor in ours]
    optimizer, reference = FusedAdam(ours, 0.01), torch.optim.Adam(theirs, lr=0.01)
    for _ in range(5):
        grads = [torch.randn(tensor.shape, generator=generator) for tensor in ours]
        for tensor, other, grad in zip(ours, theirs, grads, strict=True):
            tensor.grad, other.grad = grad.clone(), grad.clone()
        optimizer.step()
        reference.step()
    for tensor, other in zip(ours, theirs, strict=True):
        torch.testing.assert_close(tensor, other)


def test_n_step_returns_match_a_direct_computation() -> None:
    from nlp_agents.dqn import Replay

    env = make_vec(EASY, num_envs=3)
    replay = Replay(env, capacity=3 * 40, masked=False, device=torch.device("cpu"))
    rng = np.random.default_rng(0)
    rows = 30
    observations = rng.integers(0, 4, size=(rows, 3, 3))
    rewards = rng.normal(size=(rows, 3))
    ended = rng.random((rows, 3)) < 0.3
    terminated = ended & (rng.random((rows, 3)) < 0.5)
    valid = np.ones((rows, 3), bool)
    valid[1:] = ~ended[:-1]
    for t in range(rows):
        replay.add(observations[t], np.zeros(3, np.int64), rewards[t], terminated[t], ended[t], valid[t], None)
    for gamma, n in ((0.9, 3), (0.8, 1)):
        check_n_step(replay, observations, rewards, ended, terminated, valid, gamma, n)


def check_n_step(replay, observations, rewards, ended, terminated, valid, gamma, n) -> None:
    rows = len(observations)
    batch = replay.sample(256, n, gamma, torch.Generator().manual_seed(0))
    flat = torch.randint(0, (rows - n) * 3, (256,), generator=torch.Generator().manual_seed(0)).numpy()
    start, slot = flat // 3, flat % 3
    for i in range(256):
        t, e = start[i], slot[i]
        total, discount, k = 0.0, 1.0, 0
        while True:
            total += discount * rewards[t + k, e]
            discount *= gamma
            if ended[t + k, e]:
                discount = 0.0 if terminated[t + k, e] else discount
                break
            k += 1
            if k == n:
                break
        next_row = t + k + 1 if ended[t + k if k < n else t + n - 1, e] else t + n
        assert batch["returns"][i].item() == pytest.approx(total, rel=1e-5, abs=1e-5)
        assert batch["discounts"][i].item() == pytest.approx(discount, rel=1e-5)
        np.testing.assert_array_equal(batch["next_observations"][i].numpy(), observations[next_row, e])
        assert batch["weights"][i].item() == float(valid[t, e])
        assert batch["observations"][i].tolist() == observations[t, e].tolist()


def test_lambda_returns_match_the_recursive_definition() -> None:
    from nlp_agents.vlearner import lambda_returns

    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    next_values = np.array([[10.0], [20.0], [30.0], [40.0]])
    terminated = np.array([[False], [True], [False], [False]])
    ended = np.array([[False], [True], [False], [True]])
    gamma, lam = 0.5, 0.8
    g3 = 4.0 + gamma * 40.0  # truncated: bootstrap v(s_4) fully
    g2 = 3.0 + gamma * ((1 - lam) * 30.0 + lam * g3)
    g1 = 2.0  # terminated
    g0 = 1.0 + gamma * ((1 - lam) * 10.0 + lam * g1)
    np.testing.assert_allclose(
        lambda_returns(rewards, next_values, terminated, ended, gamma, lam)[:, 0], [g0, g1, g2, g3]
    )
    # Watkins: the act at step 3 explored, so the return of step 2 bootstraps fully from v(s_3).
    greedy = np.array([[True], [True], [True], [False]])
    cut_g2 = 3.0 + gamma * 30.0
    np.testing.assert_allclose(
        lambda_returns(rewards, next_values, terminated, ended, gamma, lam, greedy)[:, 0], [g0, g1, cut_g2, g3]
    )


def test_sb3_adapter_is_same_step_autoreset_of_the_native_env() -> None:
    from nlp_agents.sb3 import CoreVecEnv

    native, adapted_env = make_vec(EASY, 3), make_vec(EASY, 3)
    adapter = CoreVecEnv(adapted_env)
    adapter.seed(5)
    observations = adapter.reset()
    native_observations, _ = native.reset(seed=5)
    np.testing.assert_array_equal(observations, native_observations)
    rng = np.random.default_rng(0)
    native_ended = np.zeros(3, bool)
    for _ in range(40):
        actions = rng.integers(0, 12, size=3)
        native_actions = actions.copy()
        native_observations, native_rewards, terminated, truncated, _ = native.step(native_actions)
        observations, rewards, dones, infos = adapter.step(actions)
        np.testing.assert_allclose(rewards, native_rewards, rtol=1e-6)
        np.testing.assert_array_equal(dones, terminated | truncated)
        for slot in np.flatnonzero(dones):
            np.testing.assert_array_equal(infos[slot]["terminal_observation"], native_observations[slot])
            assert infos[slot]["TimeLimit.truncated"] == bool(truncated[slot] and not terminated[slot])
        native_ended = terminated | truncated
        if native_ended.any():  # the native env restarts those slots on its next step (NEXT_STEP)
            native_observations, *_ = native.step(np.zeros(3, np.int64))
            same = native_ended
            np.testing.assert_array_equal(observations[same], native_observations[same])
            break
    assert native_ended.any()


@pytest.mark.skipif(MASKED is None, reason="no env with action masks is registered")
def test_masked_env_is_detected_and_random_agent_honours_masks() -> None:
    env = make_vec(MASKED, 8)
    assert has_masks(env)
    agent = nlp_agents.make("random", env, seed=0)
    observations, _ = env.reset(seed=0)
    for _ in range(20):
        masks = env.unwrapped.action_masks()
        actions = agent.predict(observations, action_masks=masks)
        assert masks[np.arange(8), actions].all()
        observations, *_ = env.step(actions)


@pytest.mark.skipif(MASKED is None, reason="no env with action masks is registered")
@pytest.mark.parametrize("name", ["sb3-a2c", "sb3-ppo", "sb3-dqn"])
def test_sb3_agents_act_only_within_the_masks_while_learning(name: str, monkeypatch) -> None:
    from nlp_agents.sb3 import CoreVecEnv

    taken = []
    step_async = CoreVecEnv.step_async

    def checked_step_async(self, actions):
        masks = self.action_masks()
        taken.append(masks[np.arange(self.num_envs), np.asarray(actions)].all())
        step_async(self, actions)

    monkeypatch.setattr(CoreVecEnv, "step_async", checked_step_async)
    env = make_vec(MASKED, 8)
    agent = nlp_agents.make(name, env, seed=0, device="cpu", **FAST[name])
    assert agent.masks_in_observation
    agent.learn(800)
    assert len(taken) >= 100 and all(taken)
    # Only the one allowed act, whatever the network prefers: masks bind the greedy and the random acts.
    observations, _ = env.reset(seed=0)
    only = np.zeros((8, env.single_action_space.n), dtype=bool)
    only[np.arange(8), np.arange(8) % env.single_action_space.n] = True
    for deterministic in (True, False):
        actions = agent.predict(observations, deterministic=deterministic, action_masks=only)
        np.testing.assert_array_equal(actions, np.arange(8) % env.single_action_space.n)


TORCH_AGENTS = [name for name in AGENTS if name not in ("random", "qtable")]


@pytest.mark.parametrize("env_id", sorted({EASY, MASKED or EASY}))
@pytest.mark.parametrize("name", TORCH_AGENTS)
def test_torch_agents_place_every_tensor_on_their_device(name: str, env_id: str, tmp_path) -> None:
    # The CPU stand-in for a GPU run: with the default device set to "meta" while the agent learns,
    # predicts and saves, a tensor allocated without an explicit device lands on meta and the first
    # operation mixing it with the agent's tensors fails, exactly where a CUDA run would mix devices.
    # (Building a network allocates on the default device by design, so construction stays outside.)
    env = make_vec(env_id)
    agent = make_agent(name, env, seed=0, device="cpu")
    observations, _ = env.reset(seed=0)
    torch.set_default_device("meta")
    try:
        agent.learn(300)
        actions = agent.predict(observations, deterministic=False)
        path = agent.save(tmp_path / "a.pt")
    finally:
        torch.set_default_device(None)
    assert env.action_space.contains(actions.astype(np.int64))
    loaded = nlp_agents.load(path, env, device="cpu")
    np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", TORCH_AGENTS)
def test_cuda_end_to_end(name: str, tmp_path) -> None:
    env = make_vec(EASY, 16)
    agent = make_agent(name, env, seed=0, device="cuda").learn(2_000)
    loaded = nlp_agents.load(agent.save(tmp_path / "a.pt"), env, device="cuda")
    observations, _ = env.reset(seed=0)
    np.testing.assert_array_equal(agent.predict(observations), loaded.predict(observations))


def test_evaluate_passes_the_env_masks_to_agents() -> None:
    seen = []

    class Recorder:
        def predict(self, observations, deterministic=True, action_masks=None):
            seen.append(action_masks)
            return np.zeros(len(observations), dtype=np.int64)

    class NoMasks:
        def predict(self, observations, deterministic=True):
            return np.ones(len(observations), dtype=np.int64)

    env = make_vec(MASKED or EASY, 4)
    observations, _ = env.reset(seed=0)
    assert agent_policy(Recorder())(observations, env).shape == (4,)
    if MASKED is not None:
        np.testing.assert_array_equal(seen[-1], env.unwrapped.action_masks())
    assert agent_policy(NoMasks())(observations, env).tolist() == [1, 1, 1, 1]
