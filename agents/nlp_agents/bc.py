"""``bc``: behaviour cloning from a logged dataset, offline, the baseline every offline-RL paper reports.

The network's outputs are logits of a policy over the acts; the loss is their cross-entropy on the
data's acts, ``logsumexp_{a allowed in s} z(s, a) - z(s, a_data)``, with the acts the mask of ``s``
forbids left out (the policy never learns to weigh an act it cannot take). Greedy acts are the
allowed act of highest logit. Same network, hand-written forward/backward pass and fused Adam as
``dqn`` and ``cql``; the offline contract (``dataset=``, ``learn(n)`` = n gradient steps) is
:mod:`nlp_agents.offline`'s. Rewards and ends are ignored: BC imitates, it does not evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nlp_agents.base import hyper, positive, size, threads, unit
from nlp_agents.networks import (
    FusedAdam,
    ValueNetwork,
    backward_into_grads,
    forward_with_cache,
    logsumexp_gap,
    training_bytes,
)
from nlp_agents.offline import OfflineAgent


@dataclass
class BCConfig:
    """Hyper-parameters of :class:`BCAgent`."""

    learning_rate: float = positive(1e-3)
    """Adam step size."""
    batch_size: int = size(256)
    """Transitions per gradient step, drawn uniformly from the dataset."""
    hidden_sizes: tuple[int, ...] = size((64, 64))
    """Widths of the hidden layers of the MLP."""
    embedding_dim: int = size(16)
    """Width of each token's embedding (token-id observations only)."""
    max_grad_norm: float = hyper(10.0, 0.0)
    """Gradient-norm clip (0 = no clipping)."""
    epsilon_end: float = unit(0.05)
    """Exploration rate of ``predict(deterministic=False)``."""
    torch_threads: int = threads(1)
    """CPU threads while learning and predicting (0 = torch's default); one is fastest for small nets."""


def update(
    network: ValueNetwork, optimizer: FusedAdam, batch: Mapping[str, torch.Tensor], max_grad_norm: float
) -> torch.Tensor:
    """One gradient step of behaviour cloning; returns the per-row cross-entropies (no host sync).

    ``loss = mean_i (logsumexp_{a allowed in s_i} z(s_i, a) - z(s_i, a_i))`` over the batch, the
    mask of ``s_i`` in ``batch["masks"]`` (absent: every act allowed); its gradient on the logits is
    ``(softmax_allowed(z(s_i)) - one_hot(a_i)) / n``, back-propagated without autograd.
    """
    outputs, cache = forward_with_cache(network, batch["observations"])
    with torch.no_grad():
        weights = torch.full((len(outputs),), 1.0 / len(outputs), dtype=outputs.dtype, device=outputs.device)
        losses, grad_outputs = logsumexp_gap(outputs, batch["actions"], batch.get("masks"), weights)
    backward_into_grads(network, cache, grad_outputs)
    optimizer.step(max_grad_norm)
    return losses


class BCAgent(OfflineAgent):
    """Behaviour cloning; see :class:`BCConfig` for the hyper-parameters and the module for the design."""

    name = "bc"
    Config = BCConfig
    network_name = "policy"
    bootstraps = False
    loss_name = "the cross-entropy (loss)"

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", dataset: Any = None, **hyperparams: Any):
        super().__init__(env, seed=seed, device=device, dataset=dataset, **hyperparams)
        self.policy = self.build_action_network()
        self.optimizer = FusedAdam(list(self.policy.parameters()), self.config.learning_rate)

    def memory_needs(self) -> dict[str, float]:
        """Bytes of the network and an update batch (the dataset's are added by :class:`OfflineAgent`)."""
        return training_bytes(self.env.single_observation_space, self.n_actions, self.config)

    def update(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One BC step; ``self.loss`` holds the per-row cross-entropies."""
        self.loss = update(self.policy, self.optimizer, batch, self.config.max_grad_norm)

    def last_loss(self) -> float | None:
        """The last step's mean cross-entropy."""
        return None if self.loss is None else float(self.loss.mean())
