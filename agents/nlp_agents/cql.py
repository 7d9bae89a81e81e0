"""``cql``: discrete Conservative Q-Learning (Kumar et al. 2020) from a logged dataset, offline.

The loss is dqn's (double-DQN targets, Huber TD errors) on batches of the dataset plus the
conservative term ``alpha * (logsumexp_a Q(s, a) - Q(s, a_data))``, which pushes down the Q values
of acts the data does not take, so that the greedy policy stays where the data gives evidence.
Acts the mask of ``s`` forbids are left out of the log-sum-exp, and those of ``s'`` out of the
target's argmax. The update runs on dqn's hand-written forward/backward pass and fused Adam
(:func:`nlp_agents.dqn.td_gradients`, :func:`nlp_agents.networks.logsumexp_gap`); the offline
contract (``dataset=``, ``learn(n)`` = n gradient steps) is :mod:`nlp_agents.offline`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nlp_agents.base import hyper, size, unit
from nlp_agents.bc import BCConfig
from nlp_agents.dqn import td_gradients
from nlp_agents.networks import (
    FusedAdam,
    ValueNetwork,
    backward_into_grads,
    logsumexp_gap,
    training_bytes,
)
from nlp_agents.offline import OfflineAgent


@dataclass
class CQLConfig(BCConfig):
    """Hyper-parameters of :class:`CQLAgent`: ``bc``'s network and optimiser settings and the Q-learning ones."""

    alpha: float = hyper(1.0, 0.0)
    """Weight of the conservative term (0 = plain offline double DQN)."""
    gamma: float = unit(0.99)
    """Discount factor."""
    bootstrap_truncated: bool = False
    """Bootstrap from the last observation where the data marks an episode truncated (as ``dqn``'s)."""
    target_update_interval: int = size(250)
    """Gradient steps between copies of the online network into the target network."""
    double_q: bool = True
    """Pick the bootstrap action with the online network, value it with the target (double DQN)."""


def update(
    online: ValueNetwork,
    target: ValueNetwork,
    optimizer: FusedAdam,
    batch: Mapping[str, torch.Tensor],
    double_q: bool,
    max_grad_norm: float,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One gradient step of discrete CQL; returns ``(errors, gaps, weights)`` (no host sync).

    The loss::

        loss = sum_i w_i * huber(errors_i) + alpha * sum_i w_i * gap_i,
        gap_i = logsumexp_{a allowed in s_i} Q(s_i, a) - Q(s_i, a_i)

    with ``errors`` and ``w`` as in :func:`nlp_agents.dqn.td_gradients` and the mask of ``s_i`` in
    ``batch["masks"]`` (absent: every act allowed). Its gradient on the outputs is the TD part plus
    ``alpha * w_i * (softmax_allowed(Q(s_i)) - one_hot(a_i))``, back-propagated without autograd.
    ``tests/test_gradients.py`` checks loss, gradients and new weights against autograd.
    """
    outputs, cache, grad_outputs, errors, weights = td_gradients(online, target, batch, double_q)
    with torch.no_grad():
        rows = len(errors)
        gaps, gap_grad = logsumexp_gap(outputs[:rows], batch["actions"], batch.get("masks"), weights)
        grad_outputs[:rows].add_(gap_grad, alpha=alpha)
    backward_into_grads(online, cache, grad_outputs)
    optimizer.step(max_grad_norm)
    return errors, gaps, weights


class CQLAgent(OfflineAgent):
    """Discrete CQL; see :class:`CQLConfig` for the hyper-parameters and the module for the design."""

    name = "cql"
    Config = CQLConfig
    network_name = "q"
    loss_name = "the TD error (loss)"

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", dataset: Any = None, **hyperparams: Any):
        super().__init__(env, seed=seed, device=device, dataset=dataset, **hyperparams)
        self.q = self.build_action_network()
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.optimizer = FusedAdam(list(self.q.parameters()), self.config.learning_rate)
        self._last_terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def memory_needs(self) -> dict[str, float]:
        """Bytes of the networks and an update batch (the dataset's are added by :class:`OfflineAgent`)."""
        return training_bytes(self.env.single_observation_space, self.n_actions, self.config)

    def update(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One CQL step; ``self.loss`` holds the TD errors and gaps (both checked for finiteness)."""
        config = self.config
        errors, gaps, weights = update(
            self.q, self.q_target, self.optimizer, batch, config.double_q, config.max_grad_norm, config.alpha
        )
        self.loss = errors + gaps
        self._last_terms = errors, gaps, weights

    def last_loss(self) -> float | None:
        """The last step's CQL loss: ``sum_i w_i * huber(errors_i) + alpha * sum_i w_i * gap_i``."""
        if self._last_terms is None:
            return None
        errors, gaps, weights = self._last_terms
        huber = torch.nn.functional.smooth_l1_loss(errors, torch.zeros_like(errors), reduction="none")
        return float((huber * weights).sum() + self.config.alpha * (gaps * weights).sum())

    def after_step(self) -> None:
        """Copy the online network into the target every ``target_update_interval`` steps."""
        if self.num_timesteps % self.config.target_update_interval == 0:
            self.q_target.load_state_dict(self.q.state_dict())

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        super()._load_tensors(tensors)
        self.q_target.load_state_dict(self.q.state_dict())
