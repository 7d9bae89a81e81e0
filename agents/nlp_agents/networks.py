"""Network pieces shared by ``dqn``, ``vlearner``, ``cql``, ``bc`` and ``iqn``.

An embedding front end for token ids, an MLP for dense observations, compact storage dtypes, a
hand-written forward/backward pass and Adam step that skip autograd's per-call overhead, the
masked log-sum-exp gap that ``cql`` and ``bc`` descend, and :class:`NetworkAgent`, the base of the
agents that train one network (device, CPU threads, greedy acts, divergence checks, saved weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nlp_agents.base import BaseAgent, UnsupportedEnvError, diverged, first_nonfinite, resolve_device


def storage_dtype(space: gym.Space) -> torch.dtype:
    """The smallest torch dtype that holds every point of ``space`` (token ids stay integers)."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        high = int(np.max(getattr(space, "nvec", getattr(space, "n", 1))))
        for dtype, limit in ((torch.uint8, 255), (torch.int16, 32_767), (torch.int32, 2**31 - 1)):
            if high - 1 <= limit:
                return dtype
        return torch.int64
    if isinstance(space, gym.spaces.MultiBinary):
        return torch.uint8
    if isinstance(space, gym.spaces.Box):
        return torch.float32
    raise UnsupportedEnvError(f"observation space {space} is not supported; expected Discrete, MultiDiscrete or Box.")


def token_sizes(space: gym.Space) -> np.ndarray:
    """The number of token ids at each position of a ``Discrete``/``MultiDiscrete`` space, flat."""
    return np.asarray(getattr(space, "nvec", getattr(space, "n", 1)), dtype=np.int64).reshape(-1)


def network_bytes(space: gym.Space, out_features: int, hidden_sizes: Sequence[int], embedding_dim: int) -> float:
    """Bytes of the float32 parameters of a :class:`ValueNetwork` of these sizes, without building it."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        sizes = token_sizes(space)
        parameters, width = float(sizes.sum()) * embedding_dim, len(sizes) * embedding_dim
    else:
        parameters, width = 0.0, math.prod(space.shape or ())
    for size in (*hidden_sizes, out_features):
        parameters += (float(width) + 1.0) * size
        width = size
    return 4.0 * parameters


def activation_bytes(space: gym.Space, hidden_sizes: Sequence[int], embedding_dim: int, rows: float) -> float:
    """Bytes of the float32 activations (embeddings and hidden layers) of ``rows`` inputs in one pass."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        width = float(len(token_sizes(space))) * (embedding_dim + 2)  # embeddings, and int64 ids
    else:
        width = float(math.prod(space.shape or ()))
    return 4.0 * rows * (width + float(sum(hidden_sizes)))


def training_bytes(space: gym.Space, n_actions: int, config: Any) -> dict[str, float]:
    """Bytes of Q-learning-style training of a :class:`ValueNetwork`, by the hyper-parameters that set them.

    Online and target weights, their gradients and Adam's two moments (five copies); one update's
    activations over ``2 * batch_size`` rows (s and s'). ``config`` has ``hidden_sizes``,
    ``embedding_dim`` and ``batch_size``.
    """
    rows = 2.0 * config.batch_size
    elements = math.prod(space.shape or ())
    return {
        "networks (hidden_sizes, embedding_dim)": 5.0
        * network_bytes(space, n_actions, config.hidden_sizes, config.embedding_dim),
        "update batch (batch_size)": 3.0 * activation_bytes(space, config.hidden_sizes, config.embedding_dim, rows)
        + rows * (elements * 8 + 4.0 * n_actions),
    }


class Encoder(nn.Module):
    """Token ids -> concatenated embeddings (one table with per-position offsets); dense -> flat floats."""

    def __init__(self, space: gym.Space, embedding_dim: int) -> None:
        super().__init__()
        if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            sizes = token_sizes(space)
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long), persistent=False)
            self.embedding: nn.Embedding | None = nn.Embedding(int(sizes.sum()), embedding_dim)
            self.out_features = len(sizes) * embedding_dim
        elif isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
            self.embedding = None
            self.out_features = int(math.prod(space.shape))
        else:
            raise UnsupportedEnvError(
                f"observation space {space} is not supported; expected Discrete, MultiDiscrete or Box."
            )

    def token_offsets(self) -> torch.Tensor:
        """Where each position's ids start in the shared embedding table."""
        offsets = self.offsets
        assert isinstance(offsets, torch.Tensor)
        return offsets

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(batch, ...)`` observations (any storage dtype) -> ``(batch, out_features)`` floats."""
        if self.embedding is None:
            return observations.reshape(len(observations), -1).float()
        ids = observations.reshape(len(observations), -1).long() + self.token_offsets()
        return self.embedding(ids).reshape(len(observations), -1)


def mlp(in_features: int, hidden_sizes: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear-ReLU layers of ``hidden_sizes``, then a linear output."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_features, size), nn.ReLU()]
        in_features = size
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


class ValueNetwork(nn.Module):
    """Encoder then MLP: Q values per action (``dqn``) or one state value (``vlearner``)."""

    def __init__(self, space: gym.Space, out_features: int, hidden_sizes: Sequence[int], embedding_dim: int) -> None:
        super().__init__()
        self.encoder = Encoder(space, embedding_dim)
        self.head = mlp(self.encoder.out_features, hidden_sizes, out_features)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(batch, ...)`` -> ``(batch, out_features)``."""
        return self.head(self.encoder(observations))

    def plan(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor | None, torch.Tensor | None]:
        """``(weight, bias)`` of each linear layer, the embedding table and its offsets, looked up once.

        Built on first use, after the network has reached its device; parameters are updated in
        place (Adam, ``load_state_dict``), so the references stay valid.
        """
        plan = self.__dict__.get("_plan")
        if plan is None:
            layers: list[tuple[torch.Tensor, torch.Tensor]] = [
                (layer.weight, layer.bias) for layer in self.head if isinstance(layer, nn.Linear)
            ]
            embedding = self.encoder.embedding
            table = None if embedding is None else embedding.weight
            offsets = None if embedding is None else self.encoder.token_offsets()
            plan = (layers, table, offsets)
            self.__dict__["_plan"] = plan
        return plan


def build_network(
    space: gym.Space,
    out_features: int,
    hidden_sizes: Sequence[int],
    embedding_dim: int,
    seed: int,
    device: torch.device,
) -> ValueNetwork:
    """A :class:`ValueNetwork` initialised from ``seed`` alone (the global torch RNG is left as it was)."""
    return seeded(lambda: ValueNetwork(space, out_features, hidden_sizes, embedding_dim), seed, device)


_Module = TypeVar("_Module", bound=nn.Module)


def seeded(build: Callable[[], _Module], seed: int, device: torch.device) -> _Module:
    """``build()`` with its initial weights drawn from ``seed`` alone (the global torch RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build()
    return network.to(device)


class FusedAdam:
    """Adam (no weight decay, no amsgrad) as two kernel calls per step.

    ``torch.optim.Adam(fused=True)`` runs the same fused kernel, but its Python ``step`` costs about
    200 us on CPU, more than the whole update of a small MLP; this class calls the kernel directly
    and falls back to ``torch.optim.Adam`` where the kernel is missing. ``tests/test_gradients.py``
    checks both paths against Adam's formula and ``torch.optim.Adam``, with and without clipping.
    """

    def __init__(
        self,
        parameters: Sequence[torch.Tensor],
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameters = list(parameters)
        self.learning_rate, self.betas, self.eps = learning_rate, betas, eps
        self.exp_avgs = [torch.zeros_like(parameter) for parameter in self.parameters]
        self.exp_avg_sqs = [torch.zeros_like(parameter) for parameter in self.parameters]
        self.steps = [torch.zeros((), dtype=torch.float32, device=parameter.device) for parameter in self.parameters]
        self.fallback: torch.optim.Adam | None = None
        if not hasattr(torch, "_fused_adam_"):
            self.fallback = torch.optim.Adam(self.parameters, lr=learning_rate, betas=betas, eps=eps)

    def step(self, max_grad_norm: float = 0.0) -> None:
        """Apply one Adam step with the parameters' current ``.grad``.

        Args:
            max_grad_norm: if > 0, the gradients are first scaled so that their joint L2 norm is at
                most this (the scale is applied inside the fused kernel, with no host sync).
        """
        grads = [_grad(parameter) for parameter in self.parameters]
        if self.fallback is not None:
            if max_grad_norm > 0:
                clip_grad_norm(self.parameters, max_grad_norm)
            self.fallback.step()
            return
        scale = None
        if max_grad_norm > 0:  # the kernel divides the gradients by grad_scale
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            scale = torch.clamp(total / max_grad_norm, min=1.0)
            if scale.dtype != torch.float32:  # grad_scale must be float32: scale other dtypes exactly here
                torch._foreach_div_(grads, scale)
                scale = None
        torch._foreach_add_(self.steps, 1.0)
        torch._fused_adam_(
            self.parameters,
            grads,
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            lr=self.learning_rate,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
            grad_scale=scale,
        )


def _grad(parameter: torch.Tensor) -> torch.Tensor:
    if parameter.grad is None:
        raise RuntimeError("FusedAdam.step() before every parameter has a gradient; run a backward pass first.")
    return parameter.grad


class TorchThreads:
    """Context manager: run with ``threads`` CPU threads (0 leaves torch's setting), then restore it."""

    def __init__(self, threads: int, device: torch.device) -> None:
        self.threads = threads if device.type == "cpu" else 0
        self.previous = 0

    def __enter__(self) -> TorchThreads:
        if self.threads > 0:
            self.previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threads > 0:
            torch.set_num_threads(self.previous)


def forward(network: ValueNetwork, observations: torch.Tensor) -> torch.Tensor:
    """``network(observations)`` without autograd or module-call overhead."""
    return forward_with_cache(network, observations)[0]


def forward_with_cache(network: ValueNetwork, observations: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward pass without autograd, keeping what :func:`backward_into_grads` needs.

    Autograd's bookkeeping costs several times the arithmetic of a small MLP, so the DQN and
    V-learner updates run the forward and backward passes by hand (checked against autograd in
    the tests).

    Returns:
        ``(outputs, cache)``; ``cache`` holds the token ids (or nothing) then each layer's input.
    """
    layers, table, offsets = network.plan()
    with torch.no_grad():
        if table is None or offsets is None:
            hidden = observations.reshape(len(observations), -1).float()
            cache = [hidden]
        else:
            ids = observations.reshape(len(observations), -1).long() + offsets
            hidden = F.embedding(ids, table).reshape(len(observations), -1)
            cache = [ids, hidden]
        last = len(layers) - 1
        for index, (weight, bias) in enumerate(layers):
            hidden = torch.addmm(bias, hidden, weight.t())
            if index < last:
                hidden = torch.relu_(hidden)
                cache.append(hidden)
    return hidden, cache


def backward_into_grads(network: ValueNetwork, cache: list[torch.Tensor], grad_outputs: torch.Tensor) -> None:
    """Write into every parameter's ``.grad`` the gradient of ``sum(outputs * grad_outputs)``.

    The gradients are written into buffers allocated once (``out=`` arguments), not reallocated.
    """
    layers, table, _ = network.plan()
    inputs = cache[1:] if table is not None else cache
    grad = grad_outputs
    with torch.no_grad():
        for index in range(len(layers) - 1, -1, -1):
            (weight, bias), layer_input = layers[index], inputs[index]
            torch.mm(grad.t(), layer_input, out=_grad_buffer(weight))
            torch.sum(grad, dim=0, out=_grad_buffer(bias))
            if index > 0:  # through the ReLU that produced this layer's input
                grad = torch.ops.aten.threshold_backward(torch.mm(grad, weight), layer_input, 0.0)
            elif table is not None:
                grad = torch.mm(grad, weight)
                buffer = _grad_buffer(table).zero_()
                buffer.index_add_(0, cache[0].reshape(-1), grad.reshape(-1, table.shape[1]))


def _grad_buffer(parameter: torch.Tensor) -> torch.Tensor:
    if parameter.grad is None:
        parameter.grad = torch.zeros_like(parameter)
    return parameter.grad


def allowed(masks: torch.Tensor) -> torch.Tensor:
    """``(n, n_actions)`` boolean masks in which a row that allows nothing allows every act.

    The torch twin of :func:`nlp_envs.core.allowed_acts`: an all-False row (a terminal or ended
    slot) would otherwise make an argmax pick act 0 and a log-sum-exp return ``-inf``.
    """
    return masks | ~masks.any(dim=1, keepdim=True)


def best_allowed(values: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """Row-wise argmax of ``values`` over the acts ``masks`` allows (all acts where None or a row allows none)."""
    if masks is not None:
        values = values.masked_fill(~allowed(masks), -torch.inf)
    return values.argmax(dim=1)


def logsumexp_gap(
    outputs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor | None, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked log-sum-exp gap of each row and the gradient of their weighted sum, by hand.

    ``gap_i = logsumexp_{a allowed in row i} outputs_i,a - outputs_i,a_i``: the cross-entropy of
    the logits on the data act (``bc``) and the conservative term of CQL (``cql``). Acts a row's
    mask forbids are left out of the log-sum-exp; a row that allows nothing allows every act.

    Args:
        outputs: ``(n, n_actions)`` logits or Q values.
        actions: ``(n,)`` int64 data acts.
        masks: ``(n, n_actions)`` bool allowed acts, or None (all allowed).
        weights: ``(n,)`` weight of each row in the sum.

    Returns:
        ``(gaps, grad)``: ``gaps`` of shape ``(n,)`` and ``grad = d sum_i w_i gap_i / d outputs =
        w_i * (softmax over the allowed acts - one_hot(a_i))``, shape ``(n, n_actions)``.
    """
    logits = outputs if masks is None else outputs.masked_fill(~allowed(masks), -torch.inf)
    log_probabilities = torch.log_softmax(logits, dim=1)
    gaps = -log_probabilities.gather(1, actions[:, None]).squeeze(1)
    grad = log_probabilities.exp_()
    grad[torch.arange(len(actions), device=grad.device), actions] -= 1.0
    return gaps, grad.mul_(weights[:, None])


def clip_grad_norm(parameters: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale all gradients so that their joint L2 norm is at most ``max_norm`` (no host sync)."""
    grads = [parameter.grad for parameter in parameters if parameter.grad is not None]
    norms = torch._foreach_norm(grads)
    total = torch.linalg.vector_norm(torch.stack(norms))
    torch._foreach_mul_(grads, torch.clamp(max_norm / total, max=1.0))  # as the fused path: no epsilon


class NetworkAgent(BaseAgent):
    """A :class:`~nlp_agents.base.BaseAgent` that trains one network on a torch device.

    A subclass sets ``network_name`` (the prefix of its weights in the saved file, and the name of
    the attribute that holds the network) and ``loss_name`` (how a non-finite ``self.loss`` is named
    in :class:`~nlp_agents.base.DivergedError`), and its config has ``torch_threads``.
    """

    network_name: ClassVar[str] = ""
    loss_name: ClassVar[str] = ""

    def __init__(self, env: Any, *, seed: int = 0, device: str = "auto", **hyperparams: Any) -> None:
        super().__init__(env, seed=seed, device=device, **hyperparams)
        self.device = resolve_device(device, self.name)
        self.loss: torch.Tensor | None = None
        """The last update's loss (or TD errors), checked with the weights by :meth:`check_finite`."""

    def build_action_network(self) -> ValueNetwork:
        """A network with one output per act (Q values or logits), initialised from the agent's seed.

        Sized by the config's ``hidden_sizes`` and ``embedding_dim``, on the agent's device.
        """
        config: Any = self.config
        return build_network(
            self.env.single_observation_space,
            self.n_actions,
            config.hidden_sizes,
            config.embedding_dim,
            self.seed,
            self.device,
        )

    @property
    def network(self) -> nn.Module:
        """The trained network."""
        network: nn.Module = getattr(self, self.network_name)
        return network

    def network_outputs(self, observations: np.ndarray) -> torch.Tensor:
        """The network's outputs (Q values, logits) for a batch of checked observations, without autograd."""
        network = self.network
        assert isinstance(network, ValueNetwork)
        with torch.no_grad():
            return forward(network, torch.from_numpy(np.asarray(observations)).to(self.device))

    def greedy(self, observations: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """The allowed act of highest network output in each row."""
        allowed_masks = None if masks is None else torch.from_numpy(masks).to(self.device)
        return best_allowed(self.network_outputs(observations), allowed_masks).cpu().numpy()

    def threads(self) -> TorchThreads:
        """Run with the config's ``torch_threads`` CPU threads."""
        return TorchThreads(self.config.torch_threads, self.device)

    def check_finite(self) -> None:
        """Raise :class:`~nlp_agents.base.DivergedError` if the last loss or a weight is not finite (one host sync)."""
        prefix = self.network_name
        named: dict[str, torch.Tensor] = {
            f"weight {prefix}.{name}": value for name, value in self.network.named_parameters()
        }
        if self.loss is not None:
            named = {self.loss_name: self.loss, **named}
        bad = first_nonfinite(named)
        if bad is not None:
            raise diverged(self.name, self.num_timesteps, bad)

    def _tensors(self) -> dict[str, Any]:
        return {f"{self.network_name}.{key}": value for key, value in self.network.state_dict().items()}

    def _load_tensors(self, tensors: Mapping[str, Any]) -> None:
        prefix = f"{self.network_name}."
        self.network.load_state_dict(
            {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        )
