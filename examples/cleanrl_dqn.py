"""CleanRL's DQN (``cleanrl/dqn.py``), adapted only in its env lines to the native vector env.

The source is CleanRL's single-file DQN (https://github.com/vwxyzjn/cleanrl, ``cleanrl/dqn.py``,
MIT licence; docs at https://docs.cleanrl.dev/rl-algorithms/dqn/#dqnpy), in its structure: the
``Args`` dataclass with a docstring per field, ``QNetwork``, ``linear_schedule``, then the loop
with SB3's ``ReplayBuffer`` and the TD update. What changed, and why:

- Env lines: ``gym.vector.SyncVectorEnv([make_env(...)])`` becomes ``gym.make_vec(env_id,
  num_envs, vectorization_mode="vector_entry_point")``, the env's one batched core, wrapped in
  Gymnasium's vector ``FlattenObservation`` and ``DtypeObservation`` (float32: token-id
  observations become one-hot vectors, which ``QNetwork`` and SB3's ``ReplayBuffer`` take as
  CleanRL's Box observations) and ``RecordEpisodeStatistics``. It runs in Gymnasium 1.x's default
  ``AutoresetMode.NEXT_STEP``: the step that ends an episode returns its real last observation
  (there is no ``final_observation`` to swap in any more), and the *next* step restarts the slot,
  ignoring its action. That step is no transition, so it is not added to the replay buffer, as
  Gymnasium's guide to the autoreset modes does for replay buffers (and as CleanRL's port to
  Gymnasium 1.x does: https://github.com/vwxyzjn/cleanrl/pull/502). Episode statistics come from
  ``infos["episode"]`` and its mask ``infos["_episode"]``.
- ``env_id`` defaults to ``nlp_envs/NextWordEasy-v0``; CleanRL's CartPole defaults of the other
  hyper-parameters are kept (pass flags to change them, e.g. ``--learning-starts 1000``).
- The run ends with the project's score, :func:`nlp_envs.evaluate` of the greedy Q-network
  (normalised: random 0, oracle 1), where CleanRL evaluates a saved model with its own helper.
- Offline and without new dependencies: no Weights & Biases, Hugging Face upload or video
  options; ``tyro`` parses the arguments where it is installed, else ``argparse`` built from the
  dataclass (same flags: ``--total-timesteps 20000``, ``--no-cuda``); TensorBoard scalars are
  written where the ``tensorboard`` package is installed.

Run: ``python examples/cleanrl_dqn.py --total-timesteps 20000``; it prints the SPS and, last,
``normalized_score=...``. CleanRL's CartPole defaults start learning after 10,000 steps; these
flags reach a normalised score of 0.99 on NextWordEasy-v0 in 4,000 steps (tests/test_examples.py):
``--total-timesteps 4000 --learning-starts 500 --learning-rate 1e-3 --target-network-frequency 100
--exploration-fraction 0.3 --train-frequency 2 --batch-size 64``.
"""

import argparse
import ast
import dataclasses
import inspect
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from stable_baselines3.common.buffers import ReplayBuffer

import nlp_envs


@dataclass
class Args:
    """The hyper-parameters; each field is a flag (``seed`` is ``--seed``), its docstring the help."""

    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=False`"""
    cuda: bool = True
    """if toggled, cuda will be enabled by default"""
    save_model: bool = False
    """whether to save model into the `runs/{run_name}` folder"""

    # Algorithm specific arguments
    env_id: str = "nlp_envs/NextWordEasy-v0"
    """the id of the environment"""
    total_timesteps: int = 500000
    """total timesteps of the experiments"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    num_envs: int = 1
    """the number of parallel game environments"""
    buffer_size: int = 10000
    """the replay memory buffer size"""
    gamma: float = 0.99
    """the discount factor gamma"""
    tau: float = 1.0
    """the target network update rate"""
    target_network_frequency: int = 500
    """the timesteps it takes to update the target network"""
    batch_size: int = 128
    """the batch size of sample from the reply memory"""
    start_e: float = 1
    """the starting epsilon for exploration"""
    end_e: float = 0.05
    """the ending epsilon for exploration"""
    exploration_fraction: float = 0.5
    """the fraction of `total-timesteps` it takes from start-e to go end-e"""
    learning_starts: int = 10000
    """timestep to start learning"""
    train_frequency: int = 10
    """the frequency of training"""
    eval_episodes: int = 200
    """episodes of the final evaluation (nlp_envs.evaluate, seeded)"""


def parse_args() -> Args:
    """``tyro.cli(Args)`` where tyro is installed; otherwise the same flags through argparse."""
    try:
        import tyro
    except ImportError:
        pass
    else:
        return tyro.cli(Args)
    # The field docstrings are the help texts, as tyro shows them.
    body = ast.parse(inspect.getsource(Args)).body[0].body
    helps = {
        node.target.id: following.value.value
        for node, following in zip(body[:-1], body[1:], strict=True)
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr)
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        # field.type is the class itself (this module has no postponed annotations)
        options = {"action": argparse.BooleanOptionalAction} if field.type is bool else {"type": field.type}
        parser.add_argument(flag, default=field.default, help=helps[field.name], **options)
    return Args(**vars(parser.parse_args()))


class NullWriter:
    """Stands in for TensorBoard's ``SummaryWriter`` where the ``tensorboard`` package is not installed."""

    def add_text(self, *args: Any, **kwargs: Any) -> None:
        """Nothing is written."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        """Nothing is written."""

    def close(self) -> None:
        """Nothing to close."""


def make_writer(path: str) -> Any:
    """TensorBoard's writer at ``path``, or a :class:`NullWriter` without the ``tensorboard`` package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed (pip install tensorboard): no TensorBoard scalars are written.")
        return NullWriter()
    return SummaryWriter(path)


# ALGO LOGIC: initialize agent here:
class QNetwork(nn.Module):
    """CleanRL's MLP: Q-values of every action from a flat observation."""

    def __init__(self, env):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(np.array(env.single_observation_space.shape).prod(), 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, env.single_action_space.n),
        )

    def forward(self, x):
        """Q-values, shape ``(batch, n_actions)``."""
        return self.network(x)


def linear_schedule(start_e: float, end_e: float, duration: int, t: int):
    """Epsilon at step ``t``: from ``start_e`` down to ``end_e`` over ``duration`` steps."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


if __name__ == "__main__":
    args = parse_args()
    assert args.num_envs == 1, "vectorized envs are not supported at the moment"
    run_name = f"{args.env_id.replace('/', '_')}__{args.exp_name}__{args.seed}__{int(time.time())}"

    writer = make_writer(f"runs/{run_name}")
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join([f"|{key}|{value}|" for key, value in vars(args).items()]),
    )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    # env setup: the native vector env (NEXT_STEP autoreset, Gymnasium's default); observations
    # flattened to float32 (token ids one-hot), as QNetwork and the replay buffer expect
    envs = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point")
    envs = gym.wrappers.vector.FlattenObservation(envs)
    envs = gym.wrappers.vector.DtypeObservation(envs, np.float32)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs.single_action_space.seed(args.seed)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete action space is supported"

    q_network = QNetwork(envs).to(device)
    optimizer = optim.Adam(q_network.parameters(), lr=args.learning_rate)
    target_network = QNetwork(envs).to(device)
    target_network.load_state_dict(q_network.state_dict())

    rb = ReplayBuffer(
        args.buffer_size,
        envs.single_observation_space,
        envs.single_action_space,
        device,
        handle_timeout_termination=False,
    )
    start_time = time.time()

    # TRY NOT TO MODIFY: start the game
    obs, _ = envs.reset(seed=args.seed)
    autoreset = np.zeros(envs.num_envs, dtype=bool)
    for global_step in range(args.total_timesteps):
        # ALGO LOGIC: put action logic here
        epsilon = linear_schedule(
            args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps, global_step
        )
        if random.random() < epsilon:
            actions = np.array([envs.single_action_space.sample() for _ in range(envs.num_envs)])
        else:
            q_values = q_network(torch.Tensor(obs).to(device))
            actions = torch.argmax(q_values, dim=1).cpu().numpy()

        # TRY NOT TO MODIFY: execute the game and log data.
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)

        # TRY NOT TO MODIFY: record rewards for plotting purposes
        if "episode" in infos:
            for idx in np.flatnonzero(infos["_episode"]):
                print(f"global_step={global_step}, episodic_return={infos['episode']['r'][idx]}")
                writer.add_scalar("charts/episodic_return", infos["episode"]["r"][idx], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode"]["l"][idx], global_step)

        # TRY NOT TO MODIFY: save data to reply buffer. NEXT_STEP autoreset: next_obs of an ending
        # step is the real last observation; the step after it only restarts the env (no transition).
        if not autoreset.any():
            rb.add(obs, next_obs, actions, rewards, terminations, infos)
        autoreset = np.logical_or(terminations, truncations)

        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = next_obs

        # ALGO LOGIC: training.
        if global_step > args.learning_starts:
            if global_step % args.train_frequency == 0:
                data = rb.sample(args.batch_size)
                with torch.no_grad():
                    target_max, _ = target_network(data.next_observations).max(dim=1)
                    td_target = data.rewards.flatten() + args.gamma * target_max * (1 - data.dones.flatten())
                old_val = q_network(data.observations).gather(1, data.actions).squeeze()
                loss = F.mse_loss(td_target, old_val)

                if global_step % 100 == 0:
                    writer.add_scalar("losses/td_loss", loss, global_step)
                    writer.add_scalar("losses/q_values", old_val.mean().item(), global_step)
                    print("SPS:", int(global_step / (time.time() - start_time)))
                    writer.add_scalar("charts/SPS", int(global_step / (time.time() - start_time)), global_step)

                # optimize the model
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            # update target network
            if global_step % args.target_network_frequency == 0:
                for target_network_param, q_network_param in zip(
                    target_network.parameters(), q_network.parameters(), strict=True
                ):
                    target_network_param.data.copy_(
                        args.tau * q_network_param.data + (1.0 - args.tau) * target_network_param.data
                    )

    print("SPS:", int(args.total_timesteps / (time.time() - start_time)))
    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.cleanrl_model"
        os.makedirs(os.path.dirname(model_path), exist_ok=True)
        torch.save(q_network.state_dict(), model_path)
        print(f"model saved to {model_path}")

    # The project's score of the greedy Q-network: random 0, oracle 1.
    def greedy(observations, env):
        """The greedy actions of the Q-network (``policy(observations, env)`` for ``nlp_envs.evaluate``)."""
        flat = [gym.spaces.flatten(env.single_observation_space, row) for row in observations]  # as the env lines do
        with torch.no_grad():
            return torch.argmax(q_network(torch.Tensor(np.stack(flat)).to(device)), dim=1).cpu().numpy()

    evaluation = nlp_envs.evaluate(args.env_id, greedy, episodes=args.eval_episodes, seed=10_000)
    writer.add_scalar("eval/normalized_score", evaluation.normalized_score, args.total_timesteps)
    print(f"mean_return={evaluation.mean_return:.4f}")
    print(f"normalized_score={evaluation.normalized_score:.4f}")

    envs.close()
    writer.close()
