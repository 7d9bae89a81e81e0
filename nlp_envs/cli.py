"""The ``nlp-envs`` command line: list envs, play an episode of a reference policy."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import nlp_envs


def _env_kwargs(text: str) -> dict[str, Any]:
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f'--env-kwargs must be a JSON object, e.g. \'{{"reward": "reference"}}\': {error}'
        ) from None
    if not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError('--env-kwargs must be a JSON object, e.g. \'{"reward": "reference"}\'.')
    return kwargs


def cmd_envs(args: argparse.Namespace) -> int:
    """Print every registered env id with its spaces, limits and preset kwargs."""
    for env_id in nlp_envs.env_ids():
        spec = gym.spec(env_id)
        env = gym.make(env_id)
        try:
            print(env_id)
            print(f"  observation: {env.observation_space}")
            print(f"  action:      {env.action_space}")
            print(f"  max steps:   {spec.max_episode_steps}   reward threshold: {spec.reward_threshold}")
            print(f"  preset:      {json.dumps(spec.kwargs) if spec.kwargs else '(defaults)'}")
            print(f"  policies:    {', '.join(sorted(nlp_envs.reference_policies(env_id)))}")
        finally:
            env.close()
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """Play one episode of a reference policy and print its text, rewards and return."""
    policy = nlp_envs.reference_policy(args.env_id, args.policy)
    env = gym.make_vec(
        args.env_id, num_envs=1, vectorization_mode="vector_entry_point", render_mode="ansi", **args.env_kwargs
    )
    try:
        env.action_space.seed(args.seed)
        observations, _ = env.reset(seed=args.seed)
        print(f"{args.env_id}  policy={args.policy}  seed={args.seed}")
        print(f"  start: {_text(env)}")
        episode_return, step = 0.0, 0
        while True:
            actions = np.asarray(policy(observations, env))
            observations, rewards, terminated, truncated, infos = env.step(actions)
            step += 1
            episode_return += float(rewards[0])
            ended = bool(terminated[0] or truncated[0])
            # After the last step the slot still holds the finished episode (NEXT_STEP autoreset).
            print(f"  step {step:2d}: action {int(actions[0]):5d}  reward {float(rewards[0]):+8.3f}  | {_text(env)}")
            if ended:
                break
        metrics = {name: float(infos[name][0]) for name in getattr(env.unwrapped, "metric_names", ())}
        how = "terminated" if terminated[0] else "truncated"
        print(f"  {how} after {step} steps; return {episode_return:+.3f}")
        print("  metrics: " + ", ".join(f"{name}={value:.3g}" for name, value in metrics.items()))
    finally:
        env.close()
    return 0


def _text(env: gym.vector.VectorEnv) -> str:
    """The ansi rendering of slot 0."""
    frames = env.render()
    return str(frames[0]) if frames else ""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nlp-envs`` with one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="nlp-envs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    envs = commands.add_parser("envs", help="list the registered environments")
    envs.set_defaults(handler=cmd_envs)

    play = commands.add_parser("play", help="play one episode of a reference policy")
    play.add_argument("env_id", help="a registered id, e.g. nlp_envs/NextWord-v0")
    play.add_argument("--policy", default="oracle", help="reference policy name (default: oracle)")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--env-kwargs", type=_env_kwargs, default={}, help="JSON object of env keyword arguments")
    play.set_defaults(handler=cmd_play)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors are printed as one line, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (KeyError, ValueError, gym.error.Error, ModuleNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"nlp-envs: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
