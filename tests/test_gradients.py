"""The hand-written update steps of ``dqn``, ``vlearner``, ``cql`` and ``bc`` against plain autograd references.

``dqn.update``, ``vlearner.update``, ``cql.update`` and ``bc.update`` run the forward and backward
passes by hand and step a fused Adam kernel directly (that is where their speed comes from). Each
test here feeds one batch and one set of weights to the fast update and to a reference written
plainly with ``torch.nn.functional``, autograd and Adam (``torch.optim.Adam`` or Adam's formula),
and checks that both give the same loss, the same gradients and the same new weights, over several
steps (Adam's bias correction differs at step 1 and later). The end-to-end tests build the
reference targets from the raw stream of env transitions (terminations, truncations, NEXT_STEP
reset steps), not from the replay buffer.

Tolerances: float64 runs agree to rtol 1e-10 / atol 1e-12, float32 runs to rtol 1e-5 / atol 1e-6
(losses, gradients and new weights alike). Mutating the hand-written code (a flipped sign, the
squared error's gradient instead of Huber's, a wrong mean, a dropped ReLU derivative, an ignored
clip, mask, double_q, bootstrap_truncated, n-step end or trace cut, CQL's mask in the log-sum-exp)
fails these tests.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nlp_agents import bc, cql, dqn, vlearner
from nlp_agents.networks import FusedAdam, ValueNetwork, build_network, storage_dtype

CPU = torch.device("cpu")
TOKENS = gym.spaces.MultiDiscrete([7, 5, 3])  # token ids: embedding then MLP; float64 works end to end
DENSE = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)  # dense floats: the forward pass casts them to float32
N_ACTIONS = 4

# (space, dtype): float64 only for token ids, because the hand forward casts dense observations to
# float32 as the network's Encoder does.
CASES = [
    pytest.param(TOKENS, torch.float32, id="tokens-float32"),
    pytest.param(TOKENS, torch.float64, id="tokens-float64"),
    pytest.param(DENSE, torch.float32, id="dense-float32"),
]


def tolerances(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}


def assert_weights_close(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> None:
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs.detach(), **tolerances(mine.dtype))


def network(space: gym.Space, out_features: int, seed: int, dtype: torch.dtype) -> ValueNetwork:
    return build_network(space, out_features, (16, 8), 5, seed=seed, device=CPU).to(dtype)


def observations(space: gym.Space, count: int, seed: int) -> torch.Tensor:
    """``count`` points of ``space`` in the dtype the replay buffer stores them in."""
    space.seed(seed)
    return torch.as_tensor(np.stack([space.sample() for _ in range(count)])).to(storage_dtype(space))


class RecordingAdam(FusedAdam):
    """:class:`FusedAdam` that keeps a copy of the gradients each step receives (before clipping)."""

    received: list[torch.Tensor]

    def step(self, max_grad_norm: float = 0.0) -> None:
        self.received = [parameter.grad.clone() for parameter in self.parameters]  # type: ignore[union-attr]
        super().step(max_grad_norm)


def reference_adam(parameters: list[torch.nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)


def reference_step(
    loss: torch.Tensor, parameters: list[torch.nn.Parameter], optimizer: torch.optim.Adam, max_grad_norm: float
) -> list[torch.Tensor]:
    """Autograd backward, the gradient-norm clip, one Adam step; returns the unclipped gradients."""
    optimizer.zero_grad()
    loss.backward()
    gradients = [parameter.grad.clone() for parameter in parameters]  # type: ignore[union-attr]
    if max_grad_norm > 0:  # scale all gradients so that their joint L2 norm is at most max_grad_norm
        norm = torch.sqrt(sum((gradient**2).sum() for gradient in gradients))
        for parameter in parameters:
            parameter.grad *= torch.clamp(max_grad_norm / norm, max=1.0)  # type: ignore[operator]
    optimizer.step()
    return gradients


def huber(errors: torch.Tensor) -> torch.Tensor:
    """``e^2 / 2`` where ``|e| <= 1``, else ``|e| - 1/2``: the loss both agents descend."""
    return F.smooth_l1_loss(errors, torch.zeros_like(errors), reduction="none")


# --- Adam --------------------------------------------------------------------------------------------


def adam_by_formula(
    parameters: list[torch.Tensor],
    gradients_per_step: list[list[torch.Tensor]],
    learning_rate: float,
    max_grad_norm: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Iterator[list[torch.Tensor]]:
    """Adam (Kingma & Ba, Algorithm 1) after a joint L2-norm clip; yields the parameters after each step."""
    beta1, beta2 = betas
    parameters = [parameter.clone() for parameter in parameters]
    first = [torch.zeros_like(parameter) for parameter in parameters]
    second = [torch.zeros_like(parameter) for parameter in parameters]
    for t, gradients in enumerate(gradients_per_step, start=1):
        if max_grad_norm > 0:
            norm = math.sqrt(sum(float((gradient**2).sum()) for gradient in gradients))
            gradients = [gradient * min(1.0, max_grad_norm / norm) for gradient in gradients]
        for parameter, m, v, g in zip(parameters, first, second, gradients, strict=True):
            m.mul_(beta1).add_((1 - beta1) * g)
            v.mul_(beta2).add_((1 - beta2) * g * g)
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # bias correction
            parameter -= learning_rate * m_hat / (v_hat.sqrt() + eps)
        yield [parameter.clone() for parameter in parameters]


# Gradient norms per step. With max_grad_norm=1 the clip is active at steps 1 and 3 and inactive at
# steps 2 and 4, which changes how the steps weigh against each other in Adam's moments.
GRADIENT_NORMS = (30.0, 0.2, 3.0, 0.5)


def gradient_sequence(shapes: list[tuple[int, ...]], dtype: torch.dtype) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    sequence = []
    for norm in GRADIENT_NORMS:
        raw = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
        total = math.sqrt(sum(float((g**2).sum()) for g in raw))
        sequence.append([(g * norm / total).to(dtype) for g in raw])
    return sequence


@pytest.mark.parametrize("fused", [True, False], ids=["fused-kernel", "torch-fallback"])
@pytest.mark.parametrize("max_grad_norm", [0.0, 1e6, 1.0], ids=["no-clip", "clip-inactive", "clip-active"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_fused_adam_matches_adams_formula(
    fused: bool, max_grad_norm: float, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fused:  # the fallback FusedAdam uses where torch has no fused kernel
        monkeypatch.delattr(torch, "_fused_adam_")
    shapes = [(5, 3), (3,), (1,)]
    generator = torch.Generator().manual_seed(1)
    start = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
    ours = [tensor.clone() for tensor in start]
    optimizer = FusedAdam(ours, 0.01)
    assert (optimizer.fallback is None) == fused
    sequence = gradient_sequence(shapes, dtype)
    tolerance = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-7}
    expected_steps = adam_by_formula(start, sequence, 0.01, max_grad_norm)
    unclipped_steps = adam_by_formula(start, sequence, 0.01, 0.0)
    for step, (gradients, expected, unclipped) in enumerate(
        zip(sequence, expected_steps, unclipped_steps, strict=True), start=1
    ):
        for tensor, gradient in zip(ours, gradients, strict=True):
            tensor.grad = gradient.clone()
        optimizer.step(max_grad_norm)
        for tensor, reference in zip(ours, expected, strict=True):
            torch.testing.assert_close(tensor, reference, **tolerance, msg=lambda m, s=step: f"step {s}: {m}")
        if max_grad_norm == 1.0 and step > 1:  # the test can tell a clipped run from an unclipped one
            assert max(float((a - b).abs().max()) for a, b in zip(expected, unclipped, strict=True)) > 1e-4


@pytest.mark.parametrize("max_grad_norm", [0.0, 1e6, 1.0], ids=["no-clip", "clip-inactive", "clip-active"])
def test_fused_adam_matches_torch_adam_with_clip_grad_norm(max_grad_norm: float) -> None:
    shapes = [(5, 3), (3,)]
    generator = torch.Generator().manual_seed(2)
    ours = [torch.randn(shape, generator=generator) for shape in shapes]
    theirs = [torch.nn.Parameter(tensor.clone()) for tensor in ours]
    optimizer, reference = FusedAdam(ours, 0.01), reference_adam(theirs, 0.01)
    for step, gradients in enumerate(gradient_sequence(shapes, torch.float32), start=1):
        for tensor, other, gradient in zip(ours, theirs, gradients, strict=True):
            tensor.grad, other.grad = gradient.clone(), gradient.clone()
        optimizer.step(max_grad_norm)
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(theirs, max_grad_norm)
        reference.step()
        for tensor, other in zip(ours, theirs, strict=True):
            torch.testing.assert_close(tensor, other.detach(), rtol=1e-5, atol=1e-7, msg=lambda m, s=step: f"{s}: {m}")


# --- dqn.update --------------------------------------------------------------------------------------


def dqn_batch(space: gym.Space, size: int, masked: bool, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """A replay-like batch: terminal rows (discount 0), 1- to 3-step rows, NEXT_STEP reset rows (weight 0)."""
    generator = torch.Generator().manual_seed(seed)
    gamma = 0.9
    discounts = torch.tensor([0.0, gamma, gamma**3, gamma**2])[torch.randint(0, 4, (size,), generator=generator)]
    batch = {
        "observations": observations(space, size, seed),
        "actions": torch.randint(0, N_ACTIONS, (size,), generator=generator),
        "returns": torch.randn(size, generator=generator) * 3.0,  # large enough for |error| > 1 (Huber's linear part)
        "discounts": discounts,
        "next_observations": observations(space, size, seed + 1),
        "weights": (torch.rand(size, generator=generator) > 0.2).float(),
    }
    if masked:
        masks = torch.rand(size, N_ACTIONS, generator=generator) > 0.4
        masks[torch.arange(size), torch.randint(0, N_ACTIONS, (size,), generator=generator)] = True
        batch["next_masks"] = masks
    if dtype == torch.float64:
        for key in ("returns", "discounts", "weights"):
            batch[key] = batch[key].double()
    return batch


def reference_dqn_loss(
    q: ValueNetwork, q_target: ValueNetwork, batch: dict[str, torch.Tensor], double_q: bool
) -> torch.Tensor:
    """n-step (double) DQN: the Huber loss of ``Q(s, a)`` against ``R + discount * Q_target(s', a*)``,
    averaged over the rows that are real transitions (weight 1), with autograd through ``Q(s, a)`` only."""
    with torch.no_grad():
        next_target = q_target(batch["next_observations"])
        chooser = q(batch["next_observations"]) if double_q else next_target
        if "next_masks" in batch:
            chooser = chooser.masked_fill(~batch["next_masks"], -torch.inf)
        best = chooser.argmax(dim=1)
        targets = batch["returns"] + batch["discounts"] * next_target[torch.arange(len(best)), best]
    taken = q(batch["observations"])[torch.arange(len(best)), batch["actions"]]
    real = batch["weights"] > 0
    return F.smooth_l1_loss(taken[real], targets[real])


@pytest.mark.parametrize("max_grad_norm", [0.0, 1e6, 0.02], ids=["no-clip", "clip-inactive", "clip-active"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-masks", "masks"])
@pytest.mark.parametrize("double_q", [True, False], ids=["double-q", "target-max"])
@pytest.mark.parametrize(("space", "dtype"), CASES)
def test_dqn_update_matches_autograd(
    space: gym.Space, dtype: torch.dtype, double_q: bool, masked: bool, max_grad_norm: float
) -> None:
    learning_rate = 1e-2
    online, target = network(space, N_ACTIONS, 0, dtype), network(space, N_ACTIONS, 1, dtype)
    q = network(space, N_ACTIONS, 0, dtype)  # the reference: same weights, plain modules and autograd
    optimizer = RecordingAdam(list(online.parameters()), learning_rate)
    reference = reference_adam(list(q.parameters()), learning_rate)
    tolerance = tolerances(dtype)
    clipped = 0
    for step in range(3):  # step 1 and later steps: Adam's bias correction differs
        batch = dqn_batch(space, 64, masked, dtype, seed=10 * step)
        loss = reference_dqn_loss(q, target, batch, double_q)
        errors, weights = dqn.update(online, target, optimizer, batch, double_q, max_grad_norm)
        torch.testing.assert_close((weights * huber(errors)).sum(), loss.detach(), **tolerance)
        assert (errors.abs() < 1).any() and (errors.abs() > 1).any()  # both branches of the Huber loss
        gradients = reference_step(loss, list(q.parameters()), reference, max_grad_norm)
        for mine, theirs in zip(optimizer.received, gradients, strict=True):
            torch.testing.assert_close(mine, theirs, **tolerance)
        assert_weights_close(list(online.parameters()), list(q.parameters()))
        clipped += math.sqrt(sum(float((g**2).sum()) for g in gradients)) > max_grad_norm > 0
    assert clipped == (3 if max_grad_norm == 0.02 else 0)  # the clip cases are what their names say


# --- cql.update and bc.update ---------------------------------------------------------------------------


def with_state_masks(batch: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """``batch`` plus masks of ``s`` that allow each row's data act, and one row that allows nothing."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.rand(len(batch["actions"]), N_ACTIONS, generator=generator) > 0.5
    masks[torch.arange(len(masks)), batch["actions"]] = True
    masks[0] = False  # allows nothing: every act counts in its log-sum-exp
    return {**batch, "masks": masks}


def reference_gaps(outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``logsumexp`` over the acts the row's mask allows (all where it allows none) minus the data act's output."""
    if "masks" in batch:
        masks = batch["masks"]
        outputs = outputs.masked_fill(~(masks | ~masks.any(dim=1, keepdim=True)), -torch.inf)
    return torch.logsumexp(outputs, dim=1) - outputs[torch.arange(len(outputs)), batch["actions"]]


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.02], ids=["no-clip", "clip-active"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-masks", "masks"])
@pytest.mark.parametrize("double_q", [True, False], ids=["double-q", "target-max"])
@pytest.mark.parametrize(("space", "dtype"), CASES)
def test_cql_update_matches_autograd(
    space: gym.Space, dtype: torch.dtype, double_q: bool, masked: bool, max_grad_norm: float
) -> None:
    learning_rate, alpha = 1e-2, 0.7
    online, target = network(space, N_ACTIONS, 0, dtype), network(space, N_ACTIONS, 1, dtype)
    q = network(space, N_ACTIONS, 0, dtype)
    optimizer = RecordingAdam(list(online.parameters()), learning_rate)
    reference = reference_adam(list(q.parameters()), learning_rate)
    tolerance = tolerances(dtype)
    for step in range(3):
        batch = dqn_batch(space, 64, masked, dtype, seed=10 * step)
        if masked:
            batch = with_state_masks(batch, seed=step)
        real = batch["weights"] > 0
        gaps = reference_gaps(q(batch["observations"]), batch)
        loss = reference_dqn_loss(q, target, batch, double_q) + alpha * gaps[real].mean()
        errors, our_gaps, weights = cql.update(online, target, optimizer, batch, double_q, max_grad_norm, alpha)
        torch.testing.assert_close(our_gaps, gaps.detach(), **tolerance)
        torch.testing.assert_close(
            (weights * huber(errors)).sum() + alpha * (weights * our_gaps).sum(), loss.detach(), **tolerance
        )
        gradients = reference_step(loss, list(q.parameters()), reference, max_grad_norm)
        for mine, theirs in zip(optimizer.received, gradients, strict=True):
            torch.testing.assert_close(mine, theirs, **tolerance)
        assert_weights_close(list(online.parameters()), list(q.parameters()))


@pytest.mark.parametrize("masked", [False, True], ids=["no-masks", "masks"])
@pytest.mark.parametrize(("space", "dtype"), CASES)
def test_bc_update_matches_autograd(space: gym.Space, dtype: torch.dtype, masked: bool) -> None:
    learning_rate = 1e-2
    ours, policy = network(space, N_ACTIONS, 0, dtype), network(space, N_ACTIONS, 0, dtype)
    optimizer = RecordingAdam(list(ours.parameters()), learning_rate)
    reference = reference_adam(list(policy.parameters()), learning_rate)
    tolerance = tolerances(dtype)
    for step in range(3):
        batch = dqn_batch(space, 64, False, dtype, seed=10 * step)
        if masked:
            batch = with_state_masks(batch, seed=step)
        loss = reference_gaps(policy(batch["observations"]), batch).mean()  # the cross-entropy, masked
        if not masked:
            torch.testing.assert_close(loss, F.cross_entropy(policy(batch["observations"]), batch["actions"]))
        our_losses = bc.update(ours, optimizer, batch, max_grad_norm=0.0)
        torch.testing.assert_close(our_losses.mean(), loss.detach(), **tolerance)
        gradients = reference_step(loss, list(policy.parameters()), reference, 0.0)
        for mine, theirs in zip(optimizer.received, gradients, strict=True):
            torch.testing.assert_close(mine, theirs, **tolerance)
        assert_weights_close(list(ours.parameters()), list(policy.parameters()))


# --- vlearner.update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_grad_norm", [0.0, 1e6, 0.02], ids=["no-clip", "clip-inactive", "clip-active"])
@pytest.mark.parametrize(("space", "dtype"), CASES)
def test_vlearner_update_matches_autograd(space: gym.Space, dtype: torch.dtype, max_grad_norm: float) -> None:
    learning_rate = 3e-3
    ours, v = network(space, 1, 0, dtype), network(space, 1, 0, dtype)
    optimizer = RecordingAdam(list(ours.parameters()), learning_rate)
    reference = reference_adam(list(v.parameters()), learning_rate)
    tolerance = tolerances(dtype)
    clipped = 0
    for step in range(3):
        afterstates = observations(space, 48, seed=step)
        targets = torch.randn(48, generator=torch.Generator().manual_seed(step), dtype=dtype) * 3.0
        loss = F.smooth_l1_loss(v(afterstates).squeeze(1), targets)  # mean Huber of V(x) - G
        our_loss = vlearner.update(ours, optimizer, afterstates, targets, max_grad_norm)
        torch.testing.assert_close(our_loss, loss.detach(), **tolerance)
        errors = v(afterstates).squeeze(1) - targets
        assert (errors.abs() < 1).any() and (errors.abs() > 1).any()  # both branches of the Huber loss
        gradients = reference_step(loss, list(v.parameters()), reference, max_grad_norm)
        for mine, theirs in zip(optimizer.received, gradients, strict=True):
            torch.testing.assert_close(mine, theirs, **tolerance)
        assert_weights_close(list(ours.parameters()), list(v.parameters()))
        clipped += math.sqrt(sum(float((g**2).sum()) for g in gradients)) > max_grad_norm > 0
    assert clipped == (3 if max_grad_norm == 0.02 else 0)


# --- end to end: the env's raw stream -> replay or rollout -> one update ------------------------------

EASY = "nlp_envs/NextWordEasy-v0"  # token ids; episodes both terminate (end of sentence) and truncate
MASKED = "nlp_envs/DialogueEasy-v0"  # dense observations with action masks


class Recorder(gym.vector.VectorWrapper):
    """Keeps every observation, action, reward, end and action mask that the agent sees.

    ``observations[t]`` and ``masks[t]`` are what the agent acts on at vector step ``t``;
    ``observations[t + 1]`` is what step ``t`` returned (the final observation where an episode ended).
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.observations: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.terminated: list[np.ndarray] = []
        self.truncated: list[np.ndarray] = []

    def _keep(self, observations: np.ndarray, infos: dict[str, Any]) -> None:
        self.observations.append(np.array(observations))
        self.masks.append(np.array(infos.get("action_mask", np.ones((self.num_envs, self.single_action_space.n)))))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        observations, infos = self.env.reset(**kwargs)
        self._keep(observations, infos)
        return observations, infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        self.actions.append(np.array(actions))
        self.rewards.append(np.array(rewards, dtype=np.float64))
        self.terminated.append(np.array(terminated))
        self.truncated.append(np.array(truncated))
        self._keep(observations, infos)
        return observations, rewards, terminated, truncated, infos

    def is_transition(self, t: int, slot: int) -> bool:
        """False for the NEXT_STEP reset step after an episode's end (its action is ignored)."""
        return t == 0 or not (self.terminated[t - 1][slot] or self.truncated[t - 1][slot])


def n_step_transition(
    stream: Recorder, t: int, slot: int, n: int, gamma: float, bootstrap_truncated: bool
) -> tuple[float, float, int]:
    """``(return, discount, index of the next observation)`` of the n-step transition from step ``t``.

    The rewards are summed until the n-th step or the episode's end; a termination never bootstraps,
    a truncation bootstraps from the final observation only with ``bootstrap_truncated``.
    """
    total = 0.0
    for k in range(n):
        total += gamma**k * stream.rewards[t + k][slot]
        if stream.terminated[t + k][slot]:
            return total, 0.0, t + k + 1
        if stream.truncated[t + k][slot]:
            return total, gamma ** (k + 1) if bootstrap_truncated else 0.0, t + k + 1
    return total, gamma**n, t + n


@pytest.mark.parametrize(
    ("env_id", "n_step", "bootstrap_truncated"),
    [(EASY, 1, False), (EASY, 1, True), (EASY, 3, False), (EASY, 3, True), (MASKED, 2, False)],
)
def test_dqn_replay_and_update_match_a_reference_built_from_the_env_stream(
    env_id: str, n_step: int, bootstrap_truncated: bool
) -> None:
    from nlp_agents import make

    gamma, learning_rate, num_envs, vector_steps, size = 0.9, 1e-2, 4, 40, 128
    stream = Recorder(gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point"))
    agent: Any = make(
        "dqn",
        stream,
        seed=0,
        device="cpu",
        learning_starts=10**9,  # collect only: the update under test runs below
        n_step=n_step,
        bootstrap_truncated=bootstrap_truncated,
        gamma=gamma,
        learning_rate=learning_rate,
        hidden_sizes=(16, 8),
    )
    agent.learn(num_envs * vector_steps)
    batch = agent.replay.sample(size, n_step, gamma, torch.Generator().manual_seed(7))
    # The cells the replay drew: the same draw as Replay.sample, over rows [0, vector_steps - n_step).
    flat = torch.randint(0, (vector_steps - n_step) * num_envs, (size,), generator=torch.Generator().manual_seed(7))
    cells = [(int(i) // num_envs, int(i) % num_envs) for i in flat]
    transitions = [n_step_transition(stream, t, e, n_step, gamma, bootstrap_truncated) for t, e in cells]
    next_cells = [(following, e) for (_, e), (_, _, following) in zip(cells, transitions, strict=True)]
    reference = {
        "observations": torch.as_tensor(np.stack([stream.observations[t][e] for t, e in cells])),
        "actions": torch.as_tensor([int(stream.actions[t][e]) for t, e in cells]),
        "returns": torch.tensor([total for total, _, _ in transitions]),
        "discounts": torch.tensor([discount for _, discount, _ in transitions]),
        "next_observations": torch.as_tensor(np.stack([stream.observations[t][e] for t, e in next_cells])),
        "weights": torch.tensor([float(stream.is_transition(t, e)) for t, e in cells]),
    }
    if env_id == MASKED:
        reference["next_masks"] = torch.as_tensor(np.stack([stream.masks[t][e] for t, e in next_cells]))
    for key, expected in reference.items():
        torch.testing.assert_close(batch[key], expected.to(batch[key].dtype), rtol=1e-5, atol=1e-5, msg=key)
    # The batch holds what the test claims to cover.
    discounts = reference["discounts"][reference["weights"] > 0]
    assert (discounts == 0).any() and (discounts > 0).any() and (reference["weights"] == 0).any()
    if env_id == EASY:  # some sampled transition ends at a truncation
        assert any(
            w > 0 and stream.truncated[i - 1][e] for w, (i, e) in zip(reference["weights"], next_cells, strict=True)
        )

    q = copy.deepcopy(agent.q)  # plain modules and autograd from here
    optimizer = agent.optimizer = RecordingAdam(list(agent.q.parameters()), learning_rate)
    loss = reference_dqn_loss(q, agent.q_target, reference, double_q=True)
    errors, weights = dqn.update(agent.q, agent.q_target, optimizer, batch, True, agent.config.max_grad_norm)
    torch.testing.assert_close((weights * huber(errors)).sum(), loss.detach().float(), rtol=1e-5, atol=1e-6)
    gradients = reference_step(
        loss, list(q.parameters()), reference_adam(list(q.parameters()), learning_rate), agent.config.max_grad_norm
    )
    for mine, theirs in zip(optimizer.received, gradients, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert_weights_close(list(agent.q.parameters()), list(q.parameters()))


@pytest.mark.parametrize(
    ("env_id", "cut_traces", "bootstrap_truncated"),
    [(EASY, True, False), (EASY, False, False), (EASY, True, True), (MASKED, True, False)],
)
def test_vlearner_rollout_targets_and_update_match_a_reference_built_from_the_env_stream(
    env_id: str, cut_traces: bool, bootstrap_truncated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlp_agents import make
    from nlp_envs.core import allowed_acts

    gamma, td_lambda, learning_rate, num_envs, steps = 0.9, 0.7, 3e-3, 4, 24
    stream = Recorder(gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point"))
    agent: Any = make(
        "vlearner",
        stream,
        seed=0,
        device="cpu",
        rollout_steps=steps,
        epochs=1,
        minibatch_size=10**6,  # one gradient step over the whole rollout
        gamma=gamma,
        td_lambda=td_lambda,
        cut_traces=cut_traces,
        bootstrap_truncated=bootstrap_truncated,
        epsilon_start=0.3,
        epsilon_end=0.3,
        learning_rate=learning_rate,
        hidden_sizes=(16, 8),
    )
    v = copy.deepcopy(agent.v)  # the weights the rollout's targets are computed with
    optimizer = agent.optimizer = RecordingAdam(list(agent.v.parameters()), learning_rate)
    fitted: list[tuple[np.ndarray, np.ndarray]] = []  # what the rollout hands to _fit
    losses: list[torch.Tensor] = []  # what vlearner.update returns
    fit, real_update = agent._fit, vlearner.update

    def recording_fit(afterstates: np.ndarray, targets: np.ndarray) -> None:
        fitted.append((afterstates, targets))
        fit(afterstates, targets)

    def recording_update(*args: Any) -> torch.Tensor:
        losses.append(real_update(*args))
        return losses[-1]

    monkeypatch.setattr(agent, "_fit", recording_fit)
    monkeypatch.setattr(vlearner, "update", recording_update)
    agent.learn(num_envs * steps)
    assert len(fitted) == 1 and len(losses) == 1

    # The reference, slot by slot: v(s) = max over allowed a of V(afterstate(s, a)); a step is greedy
    # when its act is that argmax; G_t = r_t + gamma * ((1 - lambda) v(s_{t+1}) + lambda G_{t+1}), cut to
    # r_t at a termination (and at a truncation unless bootstrap_truncated), to r_t + gamma v(s_{t+1}) at
    # a bootstrapped truncation, at the rollout's end and (cut_traces) before an exploratory act.
    afterstate, n = stream.unwrapped.afterstate, stream.single_action_space.n
    values, best = [], []
    with torch.no_grad():
        for observation, mask in zip(stream.observations, stream.masks, strict=True):
            every = afterstate(np.repeat(observation, n, axis=0), np.tile(np.arange(n), num_envs))
            scores = v(torch.as_tensor(np.asarray(every))).reshape(num_envs, n).double().numpy()
            scores = np.where(allowed_acts(mask), scores, -np.inf)
            values.append(scores.max(axis=1))
            best.append(scores.argmax(axis=1))
    targets = np.zeros((steps, num_envs))
    for e in range(num_envs):
        following = 0.0
        for t in range(steps - 1, -1, -1):
            r, value = stream.rewards[t][e], values[t + 1][e]
            if stream.terminated[t][e] or (stream.truncated[t][e] and not bootstrap_truncated):
                targets[t, e] = r
            elif (
                stream.truncated[t][e] or t == steps - 1 or (cut_traces and stream.actions[t + 1][e] != best[t + 1][e])
            ):
                targets[t, e] = r + gamma * value
            else:
                targets[t, e] = r + gamma * ((1 - td_lambda) * value + td_lambda * following)
            following = targets[t, e]
    cells = [(t, e) for t in range(steps) for e in range(num_envs) if stream.is_transition(t, e)]
    expected_afterstates = np.stack(
        [afterstate(stream.observations[t][e][None], stream.actions[t][e][None])[0] for t, e in cells]
    )
    expected_targets = np.array([targets[t, e] for t, e in cells])
    afterstates, goals = fitted[0]
    np.testing.assert_array_equal(afterstates, expected_afterstates)
    np.testing.assert_allclose(goals, expected_targets, rtol=1e-5, atol=1e-5)
    # The rollout holds what the test claims to cover.
    ended = np.array(stream.terminated) | np.array(stream.truncated)
    assert ended.any() and len(cells) < steps * num_envs
    explored = np.array(stream.actions[1:]) != np.array(best[1:steps])
    assert explored.any() and (~explored).any()
    if env_id == EASY:
        assert np.array(stream.truncated).any()

    inputs = torch.as_tensor(expected_afterstates)
    loss = F.smooth_l1_loss(v(inputs).squeeze(1), torch.as_tensor(expected_targets, dtype=torch.float32))
    torch.testing.assert_close(losses[0], loss.detach(), rtol=1e-5, atol=1e-6)
    gradients = reference_step(
        loss, list(v.parameters()), reference_adam(list(v.parameters()), learning_rate), agent.config.max_grad_norm
    )
    for mine, theirs in zip(optimizer.received, gradients, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert_weights_close(list(agent.v.parameters()), list(v.parameters()))
