"""``iqn``: implicit quantile networks (Dabney et al. 2018), online, on ``dqn``'s replay and loop.

The network maps a state ``s`` and quantile fractions ``tau`` in (0, 1) to ``Z_tau(s, a)`` for every
act: the state's features ``psi(s)`` (dqn's encoder and MLP) are multiplied by a cosine embedding
of each tau, ``phi(tau) = relu(W [cos(pi i tau)]_{i=1..n_cos} + b)``, then a small head gives the
acts' quantiles. Q values are means over taus; the greedy act is the allowed act of highest mean
at ``n_policy_taus`` evenly spaced fractions (deterministic, so predictions do not draw numbers).

The loss is the quantile Huber loss between ``N = n_taus`` quantiles of ``Z(s, a)`` and ``N'`` target
samples ``R + discount * Z_target,tau'(s', a*)``, ``a*`` the allowed act of highest mean (online
network if ``double_q``). Replay, n-step returns, masks, NEXT_STEP bookkeeping, the target copies,
the divergence checks and the saved file are :class:`nlp_agents.dqn.DQNAgent`'s; the update runs on
autograd (the quantile network is not the hand-written MLP).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nlp_agents.base import positive, size
from nlp_agents.dqn import DQNAgent, DQNConfig
from nlp_agents.networks import Encoder, FusedAdam, activation_bytes, best_allowed, mlp, network_bytes, seeded


@dataclass
class IQNConfig(DQNConfig):
    """Hyper-parameters of :class:`IQNAgent`: ``dqn``'s, and the quantile sampling."""

    n_taus: int = size(8)
    """Quantile fractions sampled per transition, for the online quantiles and the targets (N = N')."""
    n_policy_taus: int = size(32)
    """Evenly spaced fractions whose mean is the Q value that acting maximises (K)."""
    n_cos: int = size(64)
    """Cosines in the embedding of a fraction."""
    kappa: float = positive(1.0)
    """Threshold of the quantile Huber loss."""


class QuantileNetwork(nn.Module):
    """``(observations, taus) -> (batch, n_taus, n_actions)`` quantiles, as in the IQN paper."""

    def __init__(
        self, space: gym.Space, n_actions: int, hidden_sizes: tuple[int, ...], embedding_dim: int, n_cos: int
    ) -> None:
        super().__init__()
        self.encoder = Encoder(space, embedding_dim)
        width = hidden_sizes[-1]
        self.body = nn.Sequential(mlp(self.encoder.out_features, hidden_sizes[:-1], width), nn.ReLU())
        self.tau_embedding = nn.Linear(n_cos, width)
        self.head = mlp(width, (width,), n_actions)
        self.n_cos = n_cos

    def forward(self, observations: torch.Tensor, taus: torch.Tensor) -> torch.Tensor:
        """``(batch, ...)`` observations and ``(batch, n)`` fractions -> ``(batch, n, n_actions)`` quantiles."""
        features = self.body(self.encoder(observations))
        frequencies = math.pi * torch.arange(1, self.n_cos + 1, device=taus.device, dtype=features.dtype)
        embedded = torch.relu(self.tau_embedding(torch.cos(taus[..., None].to(features.dtype) * frequencies)))
        return self.head(features[:, None, :] * embedded)


def quantile_huber(quantiles: torch.Tensor, targets: torch.Tensor, taus: torch.Tensor, kappa: float) -> torch.Tensor:
    """Per row: ``sum_i mean_j |tau_i - 1{d_ij < 0}| * huber_kappa(d_ij) / kappa``, ``d_ij = target_j - quantile_i``.

    Args:
        quantiles: ``(batch, N)`` online quantiles of the taken acts at fractions ``taus``.
        targets: ``(batch, N')`` target samples (no gradient).
        taus: ``(batch, N)`` the fractions.
        kappa: the Huber threshold.
    """
    errors = targets[:, None, :] - quantiles[:, :, None]
    absolute = errors.abs()
    huber = torch.where(absolute <= kappa, 0.5 * errors**2, kappa * (absolute - 0.5 * kappa))
    weights = (taus[:, :, None] - (errors.detach() < 0).to(taus.dtype)).abs()
    return (weights * huber / kappa).sum(dim=1).mean(dim=1)


def update(
    online: QuantileNetwork,
    target: QuantileNetwork,
    optimizer: FusedAdam,
    batch: Mapping[str, torch.Tensor],
    config: IQNConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """One gradient step of IQN on a replay batch; returns the per-row losses (no host sync).

    ``loss = sum_i w_i * quantile_huber_i / sum(w)`` over the batch's real transitions (``weights``
    1; the NEXT_STEP reset rows have 0), fractions drawn uniformly from ``generator``.
    """
    rows, device = len(batch["actions"]), batch["returns"].device
    taus = torch.rand(rows, config.n_taus, generator=generator, device=device)
    next_taus = torch.rand(rows, config.n_taus, generator=generator, device=device)
    with torch.no_grad():
        next_target = target(batch["next_observations"], next_taus)
        chooser = online(batch["next_observations"], next_taus) if config.double_q else next_target
        best = best_allowed(chooser.mean(dim=1), batch.get("next_masks"))
        next_quantiles = next_target.gather(2, best[:, None, None].expand(rows, config.n_taus, 1)).squeeze(2)
        targets = batch["returns"][:, None] + batch["discounts"][:, None] * next_quantiles
    quantiles = online(batch["observations"], taus)
    taken = quantiles.gather(2, batch["actions"][:, None, None].expand(rows, config.n_taus, 1)).squeeze(2)
    losses = quantile_huber(taken, targets, taus, config.kappa)
    weights = batch["weights"]
    for parameter in optimizer.parameters:
        parameter.grad = None
    ((losses * weights).sum() / weights.sum().clamp(min=1.0)).backward()
    optimizer.step(config.max_grad_norm)
    return losses.detach()


class IQNAgent(DQNAgent):
    """IQN; see :class:`IQNConfig` for the hyper-parameters and the module for the design."""

    name = "iqn"
    Config = IQNConfig
    loss_name = "the quantile loss"

    def build_q(self) -> nn.Module:
        """The quantile network, initialised from the seed."""
        config = self.config
        space = self.env.single_observation_space
        return seeded(
            lambda: QuantileNetwork(space, self.n_actions, config.hidden_sizes, config.embedding_dim, config.n_cos),
            self.seed,
            self.device,
        )

    def training_bytes(self) -> dict[str, float]:
        """Bytes of the networks and their optimiser state, and of one update's activations over the taus."""
        config, space = self.config, self.env.single_observation_space
        width = config.hidden_sizes[-1]
        rows = 3.0 * config.batch_size * config.n_taus  # s, s' online and s' target, each at n_taus fractions
        head = (config.n_cos + 1.0) * width + (width + 1.0) * width + (width + 1.0) * self.n_actions
        return {
            "networks (hidden_sizes, embedding_dim, n_cos)": 5.0
            * (network_bytes(space, width, config.hidden_sizes[:-1], config.embedding_dim) + 4.0 * head),
            "update batch (batch_size, n_taus)": 3.0
            * (
                activation_bytes(space, config.hidden_sizes, config.embedding_dim, 3.0 * config.batch_size)
                + 4.0 * rows * (config.n_cos + 3.0 * width + self.n_actions)
                + 4.0 * config.batch_size * config.n_taus**2
            ),
        }

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One IQN step; ``self.loss`` holds the per-row quantile losses."""
        q, q_target = self.q, self.q_target
        assert isinstance(q, QuantileNetwork) and isinstance(q_target, QuantileNetwork)  # build_q's
        self.loss = update(q, q_target, self.optimizer, batch, self.config, self.generator)
        self.loss_weights = batch["weights"]

    def last_loss(self) -> float | None:
        """The last update's quantile Huber loss, weighted over its real transitions as in :func:`update`."""
        if self.loss is None or self.loss_weights is None:
            return None
        return float((self.loss * self.loss_weights).sum() / self.loss_weights.sum().clamp(min=1.0))

    def network_outputs(self, observations: np.ndarray) -> torch.Tensor:
        """Q values: each act's mean quantile at ``n_policy_taus`` evenly spaced fractions."""
        count = self.config.n_policy_taus
        taus = (torch.arange(count, device=self.device, dtype=torch.float32) + 0.5) / count
        with torch.no_grad():
            inputs = torch.from_numpy(np.asarray(observations)).to(self.device)
            return self.q(inputs, taus.expand(len(inputs), count)).mean(dim=1)
