"""``nlp_envs.sb3``: the native vector env as a Stable-Baselines3 ``VecEnv``.

SB3 2.9 has no checker for a ``VecEnv`` itself (its ``env_checker.check_env`` takes a single env,
which tests/test_envs.py runs); what it has are its ``VecEnv`` wrappers, so these tests hold the
adapter to them (``VecCheckNan``, ``VecMonitor``, ``VecNormalize``), to ``DummyVecEnv`` over
``gym.make`` step for step, to SB3's ``get_attr``/``set_attr``/``env_method`` contract, and to
sb3-contrib's ``MaskablePPO``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv, VecMonitor, VecNormalize

from nlp_envs.sb3 import CoreVecEnv, make_vec_env
from tests.conftest import ENV_IDS, make_vec

EASY = "nlp_envs/NextWordEasy-v0"
MASKED = "nlp_envs/DialogueEasy-v0"


def random_actions(vec_env: Any, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Uniform actions for an SB3 ``VecEnv`` or a Gymnasium ``VectorEnv``."""
    n = int(getattr(vec_env, "single_action_space", vec_env.action_space).n)
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=vec_env.num_envs) for _ in range(steps)]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_env_steps_as_dummy_vec_env_over_gym_make(env_id: str) -> None:
    """Seed for seed: observations, rewards, dones, terminal observations and TimeLimit.truncated."""
    vec_env = make_vec_env(env_id, n_envs=3, seed=7)
    assert isinstance(vec_env, VecEnv) and vec_env.num_envs == 3
    dummy = DummyVecEnv([lambda: gym.make(env_id) for _ in range(3)])
    dummy.seed(7)
    assert vec_env.observation_space == dummy.observation_space and vec_env.action_space == dummy.action_space
    np.testing.assert_allclose(vec_env.reset(), dummy.reset(), rtol=1e-6)
    ended = 0
    for actions in random_actions(vec_env, 60):
        observations, rewards, dones, infos = vec_env.step(actions)
        want_observations, want_rewards, want_dones, want_infos = dummy.step(actions)
        np.testing.assert_allclose(observations, want_observations, rtol=1e-6)
        np.testing.assert_allclose(rewards, want_rewards, rtol=1e-5)
        assert rewards.dtype == want_rewards.dtype
        np.testing.assert_array_equal(dones, want_dones)
        for info, want in zip(infos, want_infos, strict=True):
            assert info["TimeLimit.truncated"] == want["TimeLimit.truncated"]
            assert ("terminal_observation" in info) == ("terminal_observation" in want)
            if "terminal_observation" in want:
                np.testing.assert_allclose(info["terminal_observation"], want["terminal_observation"], rtol=1e-6)
        ended += int(dones.sum())
    assert ended, "no episode ended: autoreset was not tested"


def test_a_time_limit_is_marked_truncated_and_a_real_end_is_not() -> None:
    vec_env = make_vec_env(EASY, n_envs=2, seed=0, max_episode_steps=2)
    vec_env.reset()
    *_, infos = vec_env.step(np.array([2, 0]))  # word 2 goes on; <eos> (0) ends the sentence
    assert infos[0]["TimeLimit.truncated"] is False and "terminal_observation" not in infos[0]
    assert infos[1]["TimeLimit.truncated"] is False and "terminal_observation" in infos[1]  # terminated
    *_, infos = vec_env.step(np.array([2, 2]))
    assert infos[0]["TimeLimit.truncated"] is True and "terminal_observation" in infos[0]  # cut by the limit


def test_seed_reproduces_and_different_seeds_differ() -> None:
    def run(seed: int) -> list[np.ndarray]:
        vec_env = make_vec_env(MASKED, n_envs=4, seed=seed)
        seen = [vec_env.reset()]
        for actions in random_actions(vec_env, 20):
            seen.append(vec_env.step(actions)[0])
        return seen

    first, again, other = run(3), run(3), run(4)
    for got, want in zip(again, first, strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(got, want) for got, want in zip(other, first, strict=True))


def test_seed_then_reset_reseeds_as_sb3_says() -> None:
    vec_env = make_vec_env(EASY, n_envs=3)
    assert vec_env.seed(11) == [11, 12, 13]
    first = vec_env.reset()
    for actions in random_actions(vec_env, 5):
        vec_env.step(actions)
    vec_env.seed(11)
    np.testing.assert_array_equal(vec_env.reset(), first)
    native, _ = make_vec(EASY, 3).reset(seed=11)
    np.testing.assert_array_equal(first, native)


def test_vec_check_nan_finds_nothing() -> None:
    vec_env = VecCheckNan(make_vec_env(MASKED, n_envs=4, seed=0), raise_exception=True)
    vec_env.reset()
    for actions in random_actions(vec_env, 50):
        vec_env.step(actions)


def episodes_of(vec_env: VecEnv, steps: int) -> list[tuple[int, float, int]]:
    """``(slot, return, length)`` of every episode that ends within ``steps`` random steps, from infos."""
    vec_env.reset()
    found = []
    for actions in random_actions(vec_env, steps):
        _, _, dones, infos = vec_env.step(actions)
        found += [(slot, infos[slot]["episode"]["r"], infos[slot]["episode"]["l"]) for slot in np.flatnonzero(dones)]
    return found


def test_vec_monitor_episode_stats_are_the_env_returns() -> None:
    steps = 60
    native = gym.make_vec(
        MASKED, num_envs=4, vectorization_mode="vector_entry_point", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    native.reset(seed=5)
    returns, lengths, expected = np.zeros(4), np.zeros(4, dtype=int), []
    for actions in random_actions(native, steps):
        _, rewards, terminated, truncated, _ = native.step(actions)
        returns += rewards
        lengths += 1
        for slot in np.flatnonzero(terminated | truncated):
            expected.append((slot, returns[slot], lengths[slot]))
            returns[slot], lengths[slot] = 0.0, 0
    assert len(expected) > 4
    for vec_env in (VecMonitor(make_vec_env(MASKED, n_envs=4, seed=5)), make_vec_env(MASKED, n_envs=4, seed=5)):
        found = episodes_of(vec_env, steps)
        assert [(slot, length) for slot, _, length in found] == [(slot, length) for slot, _, length in expected]
        # VecMonitor rounds returns to 6 decimals
        np.testing.assert_allclose([r for _, r, _ in found], [r for _, r, _ in expected], atol=1e-5)


def test_vec_normalize_normalizes_and_ppo_learns_through_it() -> None:
    raw = make_vec_env(MASKED, n_envs=4, seed=0)
    vec_env = VecNormalize(raw, norm_obs=True, norm_reward=True)
    normalized = vec_env.reset()
    for actions in random_actions(vec_env, 30):
        normalized, rewards, _, _ = vec_env.step(actions)
    np.testing.assert_array_equal(vec_env.get_original_obs(), raw.core.observe())
    assert not np.allclose(normalized, vec_env.get_original_obs())
    assert np.isfinite(normalized).all() and np.isfinite(rewards).all()
    model = PPO("MlpPolicy", vec_env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    assert model.num_timesteps == 128 and vec_env.obs_rms.count > 30 * 4


def test_get_attr_set_attr_env_method_env_is_wrapped_as_sb3_specifies() -> None:
    vec_env = make_vec_env(EASY, n_envs=3, seed=0, render_mode="ansi")
    vec_env.reset()
    assert vec_env.get_attr("render_mode") == ["ansi"] * 3
    assert vec_env.get_attr("render_mode", indices=[0, 2]) == ["ansi"] * 2
    assert vec_env.get_attr("num_envs", indices=1) == [3]
    with pytest.raises(AttributeError):
        vec_env.get_attr("no_such_attribute")
    assert vec_env.has_attr("action_masks") and vec_env.has_attr("metric_names")
    assert not vec_env.has_attr("no_such_attribute")
    texts = vec_env.env_method("render")
    assert texts == list(vec_env.env.unwrapped.render()) and all(isinstance(text, str) for text in texts)
    masks = vec_env.env_method("action_masks", indices=[2, 0])
    np.testing.assert_array_equal(np.stack(masks), vec_env.action_masks()[[2, 0]])
    with pytest.raises(AttributeError, match="'afterstate' is not a per-slot method"):
        vec_env.env_method("afterstate")
    with pytest.raises(IndexError, match=r"index 3 is not a slot; expected integers in \[0, 2\]"):
        vec_env.get_attr("render_mode", indices=[3])
    vec_env.set_attr("info_text", True)
    assert vec_env.env.unwrapped.info_text is True and vec_env.get_attr("info_text") == [True] * 3
    with pytest.raises(ValueError, match="set for all 3 slots at once; pass indices=None"):
        vec_env.set_attr("info_text", False, indices=[0])
    with pytest.raises(AttributeError, match="has no attribute 'info_txt'"):
        vec_env.set_attr("info_txt", False)
    assert vec_env.env_is_wrapped(gym.Wrapper) == [False] * 3
    vec_env.render()  # SB3's VecEnv.render of an "ansi" env calls env_method("render")


def test_reset_options_are_refused() -> None:
    vec_env = make_vec_env(EASY, n_envs=2)
    vec_env.set_options({"colour": "red"})
    with pytest.raises(ValueError, match=r"reset options \['colour'\] are not supported"):
        vec_env.reset()


def test_maskable_ppo_reads_the_masks_and_takes_only_allowed_acts(monkeypatch: pytest.MonkeyPatch) -> None:
    maskable = pytest.importorskip("sb3_contrib", reason="sb3-contrib is not installed; pip install 'sb3-contrib>=2.3'")
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    vec_env = make_vec_env(MASKED, n_envs=4, seed=0)
    vec_env.reset()
    assert is_masking_supported(vec_env) and is_masking_supported(VecMonitor(vec_env))
    np.testing.assert_array_equal(get_action_masks(VecMonitor(vec_env)), vec_env.env.unwrapped.action_masks())
    assert not vec_env.action_masks().all(), "the masks allow every act: nothing would be tested"
    taken: list[bool] = []
    step_async = CoreVecEnv.step_async

    def checked_step_async(self: CoreVecEnv, actions: Any) -> None:
        taken.append(bool(self.action_masks()[np.arange(self.num_envs), np.asarray(actions)].all()))
        step_async(self, actions)

    monkeypatch.setattr(CoreVecEnv, "step_async", checked_step_async)
    model = maskable.MaskablePPO("MlpPolicy", vec_env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert len(taken) >= 64 and all(taken)


def test_mask_observations_hand_sb3_the_mask_of_each_state() -> None:
    env = make_vec(MASKED, 4)
    vec_env = CoreVecEnv(env, mask_observations=True)
    vec_env.seed(0)
    observations = vec_env.reset()
    np.testing.assert_array_equal(observations["action_mask"], env.unwrapped.action_masks())
    for actions in random_actions(vec_env, 30):
        allowed = vec_env.action_masks()
        actions = np.array([np.flatnonzero(row)[0] for row in allowed])  # an allowed act in every slot
        observations, _, dones, infos = vec_env.step(actions)
        np.testing.assert_array_equal(observations["action_mask"], env.unwrapped.action_masks())
        for slot in np.flatnonzero(dones):
            assert set(infos[slot]["terminal_observation"]) == {"observation", "action_mask"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_vec_env("nlp_envs/NoSuchTask-v0"), r"env_id 'nlp_envs/NoSuchTask-v0' is not registered \("),
        (lambda: make_vec_env(3), r"env_id must be a registered id \(a str\), got 3"),
        (lambda: make_vec_env(EASY, n_envs=0), r"n_envs must be an integer >= 1 \(the number of env copies\), got 0"),
        (lambda: make_vec_env(EASY, n_envs=2.0), r"n_envs must be an integer >= 1 .*got 2\.0"),
        (lambda: make_vec_env(EASY, n_envs=True), r"n_envs must be an integer >= 1 .*got True"),
        (lambda: make_vec_env(EASY, seed=-1), r"seed must be None or an integer >= 0 .*got -1"),
        (lambda: make_vec_env(EASY, seed="1"), r"seed must be None or an integer >= 0 .*got '1'"),
        (lambda: make_vec_env(EASY, num_envs=4), r"'num_envs' is not an env keyword argument here: pass n_envs="),
        (lambda: make_vec_env(EASY, autoreset_mode="NextStep"), r"always steps in AutoresetMode\.SAME_STEP"),
        (lambda: make_vec_env(EASY, vocab_sise=12), r"has no keyword argument 'vocab_sise'; valid ones: .*vocab_size"),
        (lambda: make_vec_env(EASY, vocab_size="12"), r"vocab_size='12' has type str; .* expects int"),
        (lambda: make_vec_env("CartPole-v1"), r"needs an nlp-envs native vector env .*got CartPoleVectorEnv"),
    ],
    ids=[
        "unknown-id",
        "id-not-str",
        "zero-envs",
        "float-envs",
        "bool-envs",
        "negative-seed",
        "str-seed",
        "num-envs-kwarg",
        "autoreset-kwarg",
        "unknown-kwarg",
        "ill-typed-kwarg",
        "not-native",
    ],
)
def test_bad_arguments_are_refused_in_one_line(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value) and str(raised.value).startswith("nlp_envs.sb3.make_vec_env")


def test_the_sb3_agents_still_refuse_a_vector_env_that_is_not_native() -> None:
    import nlp_agents

    env = gym.make_vec(EASY, num_envs=2, vectorization_mode="sync")
    with pytest.raises(nlp_agents.UnsupportedEnvError, match="sb3-ppo: the SB3 adapter needs an nlp-envs native"):
        nlp_agents.make("sb3-ppo", env, seed=0, device="cpu")
