"""The ``nlp-envs`` command line: envs, play, agents, train, bench and leaderboard."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import nlp_envs
from nlp_envs.leaderboard import commands as leaderboard_commands
from nlp_envs.leaderboard.store import ResultStoreError
from nlp_envs.progress import StepBar


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
    from nlp_envs.plugins import env_registry

    for plugin in env_registry().failures():
        print(f"nlp-envs: {plugin.describe()} was not loaded: {plugin.error}", file=sys.stderr)
    for env_id in nlp_envs.env_ids():
        spec = gym.spec(env_id)
        try:
            env = gym.make(env_id)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - one broken (plugin) env must not hide the others
            print(f"{env_id}\n  error:       cannot be made: {type(error).__name__}: {error}")
            continue
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


def cmd_agents(args: argparse.Namespace) -> int:
    """List every agent with its providing distribution, version and status, and every plugin that failed."""
    from agents.plugins import describe

    rows = describe()
    header = {
        "agent": "AGENT",
        "distribution": "DISTRIBUTION",
        "version": "VERSION",
        "plugin": "PLUGIN",
        "status": "STATUS",
    }
    widths = {
        key: max(len(row[key]) for row in [header, *rows]) for key in ("agent", "distribution", "version", "plugin")
    }
    for row in [header, *rows]:
        print("  ".join(row[key].ljust(widths[key]) for key in widths) + "  " + row["status"])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train an agent on an env, print a progress bar, evaluate it, optionally save it."""
    import agents

    env = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **args.env_kwargs)
    try:
        agent = agents.make(args.agent, env, seed=args.seed, device=args.device, **args.hyperparams)
        print(f"training {args.agent} on {args.env} for {args.steps:,} steps (seed {args.seed}, {args.num_envs} envs)")
        bar = StepBar(args.steps)
        agent.learn(args.steps, callback=lambda _agent, done: bar.update(done))
        bar.update(args.steps)
        bar.finish()
        if args.save is not None:
            print(f"saved to {agent.save(args.save) or args.save}")
        result = nlp_envs.evaluate(
            args.env,
            agent,
            episodes=args.eval_episodes,
            seed=args.eval_seed,
            env_kwargs=args.env_kwargs,
        )
    finally:
        env.close()
    print(
        f"evaluation: {args.agent} on {args.env}: mean return {result.mean_return:+.3f} over {args.eval_episodes} "
        f"episodes (seed {args.eval_seed}); normalised score {result.normalized_score:.3f} "
        f"(0 = random's {result.random_return:+.3f}, 1 = oracle's {result.oracle_return:+.3f})"
    )
    return 0


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        example = '{"learning_rate": 0.001}'
        raise argparse.ArgumentTypeError(f"expected a JSON object, e.g. '{example}': {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"learning_rate\": 0.001}'.")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_agent_commands(commands: Any) -> None:
    """Add ``agents`` and ``train`` to the sub-command parser."""
    agents_command = commands.add_parser("agents", help="list the agents that plugins provide, and broken plugins")
    agents_command.set_defaults(handler=cmd_agents)

    train = commands.add_parser("train", help="train an agent on an env and evaluate it")
    train.add_argument("--agent", required=True, help="an agent name (see `nlp-envs agents`)")
    train.add_argument("--env", required=True, help="a registered id, e.g. nlp_envs/NextWordEasy-v0")
    train.add_argument("--steps", type=_positive, required=True, help="env steps, all envs together")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    train.add_argument("--num-envs", type=_positive, default=8, help="parallel episodes (default: 8)")
    train.add_argument("--save", default=None, help="write the trained agent to this path")
    train.add_argument("--hyperparams", type=_json_object, default={}, help="JSON object of agent hyper-parameters")
    train.add_argument("--env-kwargs", type=_env_kwargs, default={}, help="JSON object of env keyword arguments")
    train.add_argument("--eval-episodes", type=_positive, default=100, help="evaluation episodes (default: 100)")
    train.add_argument("--eval-seed", type=int, default=1_000_000, help="seed of the evaluation episodes")
    train.set_defaults(handler=cmd_train)


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

    add_agent_commands(commands)
    leaderboard_commands.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors are printed as one line, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (KeyError, ValueError, gym.error.Error, ModuleNotFoundError, ResultStoreError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"nlp-envs: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
