"""The ``nlp-envs`` command line: envs, play, agents, train, collect, bench and leaderboard.

Every error ends the same way, whichever sub-command raised it: one line on standard error and a
non-zero exit code, never a traceback unless ``--debug`` is given (before or after the sub-command).

- exit 2: a user error; the line names the input, what is wrong and what is expected;
- exit 1: an unexpected internal error; the line names its type and message;
- exit 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np

import nlp_envs
from nlp_agents.base import DivergedError
from nlp_agents.logger import check_tensorboard, open_logger, run_folder
from nlp_envs import atomic

# env_parameters and fits_annotation stay importable from here, where they were first defined.
from nlp_envs.arguments import check_env_kwargs, positive_int
from nlp_envs.arguments import env_parameters as env_parameters
from nlp_envs.arguments import fits_annotation as fits_annotation
from nlp_envs.leaderboard import commands as leaderboard_commands
from nlp_envs.leaderboard.store import JOURNAL_SUFFIX, ResultStoreError
from nlp_envs.progress import StepBar
from nlp_envs.resources import ResourceLimitError

PROG = "nlp-envs"
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
MAX_SEED = 2**32 - 1
MAX_PLAY_STEPS = 10_000
"""``play`` stops an episode that has not ended by then (an env without a step limit would play for ever)."""
"""Seeds are 32-bit, as NumPy's legacy seeding, SB3 and most RL code expect."""


class CommandLineError(ValueError):
    """A command-line argument that is malformed or cannot work; the message names the flag."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and go through :func:`main`."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage and exiting, so that :func:`main` reports it."""
        raise CommandLineError(f"{message} (see `{self.prog} --help`)")


# --- argument types -------------------------------------------------------------------------------


def _json_object(example: str) -> Any:
    """An argparse type for a JSON object of finite values (argparse names the flag in its errors)."""

    def refuse_non_finite(text: str) -> float:
        raise argparse.ArgumentTypeError(f"{text} is not allowed, numbers must be finite; e.g. '{example}'")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            refuse_non_finite(text)
        return value

    def parse(text: str) -> dict[str, Any]:
        try:
            value = json.loads(text, parse_constant=refuse_non_finite, parse_float=finite_float)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(
                f"not valid JSON ({error}); expected an object, e.g. '{example}'"
            ) from None
        except RecursionError:
            raise argparse.ArgumentTypeError(f"JSON nested too deeply; expected an object, e.g. '{example}'") from None
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise argparse.ArgumentTypeError(f"expected a JSON object, got a {kind}; e.g. '{example}'")
        return value

    parse.__name__ = "JSON object"
    return parse


_env_kwargs = _json_object('{"reward": "reference"}')
_hyperparams = _json_object('{"learning_rate": 0.001}')


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text!r}")
    return value


# --- checks made before any work ------------------------------------------------------------------


def check_writable(path: str | os.PathLike[str], flag: str, *, create_folders: bool) -> None:
    """Refuse, before any work is done, a file path that could not be written later.

    Args:
        path: the file to be written.
        flag: the command-line flag that gave it, for the message.
        create_folders: whether the writer creates missing folders (else the folder must exist).

    Raises:
        CommandLineError: see :func:`nlp_envs.atomic.check_writable`.
    """
    try:
        atomic.check_writable(path, create_folders=create_folders)
    except atomic.NotWritableError as error:
        raise CommandLineError(f"{flag} {error}") from None


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file (through links too, where both exist)."""
    try:
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
        return first.resolve() == second.resolve()
    except OSError:
        return False


def check_not_an_input(path: str | os.PathLike[str], flag: str, inputs: dict[str, str | os.PathLike[str]]) -> None:
    """Refuse an output path that is one of the command's input files: writing it would destroy that input.

    Args:
        path: the file the command will write.
        flag: the command-line flag that gave it, for the message.
        inputs: what each input is (e.g. ``"the results database of --db"``) -> its path.

    Raises:
        CommandLineError: ``path`` is one of ``inputs`` (the same file, also through a link).
    """
    for what, source in inputs.items():
        if _same_file(Path(path), Path(source)):
            raise CommandLineError(
                f"{flag} {str(path)!r} is {what}; writing there would replace it; choose another {flag} path."
            )


def _input_files(args: argparse.Namespace) -> dict[str, str | os.PathLike[str]]:
    """The files a command reads and must not overwrite: the results database and its companions, data files."""
    from nlp_envs.leaderboard.suites import DATA_FILE_KWARGS

    inputs: dict[str, str | os.PathLike[str]] = {}
    db = getattr(args, "db", None)
    if db is not None:
        inputs["the results database of --db"] = db
        for suffix in ("-wal", "-shm", JOURNAL_SUFFIX):
            inputs[f"a companion file of the --db database ({suffix})"] = Path(f"{db}{suffix}")
    for kwarg, value in (getattr(args, "env_kwargs", None) or {}).items():
        if kwarg in DATA_FILE_KWARGS and isinstance(value, str) and value:
            inputs[f"the data file of --env-kwargs {kwarg}"] = value
    return inputs


def check_tensorboard_folder(folder: str | os.PathLike[str], flag: str = "--tensorboard") -> None:
    """Refuse, before any work, a TensorBoard folder that cannot be written (or a missing ``tensorboard`` package).

    Raises:
        CommandLineError: the folder is a file, sits below a file, or is not writable.
        ModuleNotFoundError: the ``tensorboard`` package is missing (the message names the extra).
    """
    try:
        check_tensorboard(folder)
    except atomic.NotWritableError as error:
        raise CommandLineError(f"{flag} {error}") from None


def check_device(device: str, flag: str = "--device") -> None:
    """Refuse a device other than ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` with N a present GPU."""
    if device in ("auto", "cpu"):
        return
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type != "cuda":
        raise CommandLineError(f"{flag} {device!r} is not a device; expected auto, cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise CommandLineError(f"{flag} {device!r}: CUDA is not available here; use cpu or auto.")
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise CommandLineError(f"{flag} {device!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}.")


def check_env_id(env_id: str, flag: str) -> None:
    """Refuse an unregistered env id, naming the flag and where to find the registered ones."""
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise CommandLineError(f"{flag} {env_id!r}: {error} Run `{PROG} envs` to list the env ids.") from None


def check_arguments(args: argparse.Namespace) -> None:
    """Check the arguments every sub-command shares, by destination name, before any work starts.

    ``env``/``env_id`` with ``env_kwargs``: a registered id and kwargs its constructor takes;
    ``device``: a device this machine has; ``save`` and ``output``: writable file paths; ``db``: not
    a folder, and writable when the command writes it (``bench``); ``tensorboard``: a writable folder
    and the ``tensorboard`` package installed. ``save`` and ``output`` may not be a file the command
    reads (the ``--db`` database and its companions, a data file of ``--env-kwargs``).
    """
    env_id = getattr(args, "env", None) or getattr(args, "env_id", None)
    if isinstance(env_id, str):
        check_env_id(env_id, "--env" if hasattr(args, "env") else "ENV_ID")
        if getattr(args, "env_kwargs", None):
            chosen = "the command sets it"
            reserved = {
                "num_envs": f"{chosen} from --num-envs" if hasattr(args, "num_envs") else chosen,
                "render_mode": chosen,
                "vectorization_mode": chosen,
                # Training, playing, logging and scoring count each episode once, in NextStep mode.
                "autoreset_mode": chosen,
            }
            check_env_kwargs(env_id, args.env_kwargs, given=reserved)
    if isinstance(getattr(args, "device", None), str):
        check_device(args.device)
    inputs = _input_files(args)
    if getattr(args, "save", None) is not None:
        check_not_an_input(args.save, "--save", inputs)
        check_writable(args.save, "--save", create_folders=True)
    if getattr(args, "output", None) is not None:
        check_not_an_input(args.output, "--output", inputs)
        check_writable(args.output, "--output", create_folders=False)
    if getattr(args, "tensorboard", None) is not None:
        check_tensorboard_folder(args.tensorboard)
    db = getattr(args, "db", None)
    if db is not None:
        if Path(db).is_dir():
            raise CommandLineError(
                f"--db {str(db)!r} is a folder; expected a results file, e.g. results/leaderboard.sqlite."
            )
        if args.command == "bench" and not Path(db).exists():
            check_writable(db, "--db", create_folders=True)


# --- sub-commands ---------------------------------------------------------------------------------


def cmd_envs(args: argparse.Namespace) -> int:
    """Print every nlp_envs/ id and every id an env plugin registered, with spaces, limits and preset kwargs.

    An env that cannot be built (a missing data package, a broken plugin) is listed with its error,
    and plugins that failed to load are named on stderr; the others are still listed, and the exit
    code is then 2.
    """
    from nlp_envs.plugins import env_registry, plugin_env_ids

    for plugin in env_registry().failures():
        print(f"nlp-envs: {plugin.describe()} was not loaded: {plugin.error}", file=sys.stderr)
    broken = []
    # Plugins register in namespaces of their own (as their docs ask), which env_ids() does not cover.
    for env_id in sorted({*nlp_envs.env_ids(), *plugin_env_ids()}):
        spec = gym.spec(env_id)
        print(env_id)
        try:
            env = gym.make(env_id)
        except (Exception, SystemExit) as error:  # one broken (plugin) env must not hide the others
            broken.append(env_id)
            print(f"  cannot be built: {type(error).__name__}: {error}")
            continue
        try:
            print(f"  observation: {env.observation_space}")
            print(f"  action:      {env.action_space}")
            print(f"  max steps:   {spec.max_episode_steps}   reward threshold: {spec.reward_threshold}")
            print(f"  preset:      {json.dumps(spec.kwargs) if spec.kwargs else '(defaults)'}")
            print(f"  policies:    {', '.join(sorted(nlp_envs.reference_policies(env_id)))}")
        finally:
            env.close()
    if broken:
        raise CommandLineError(f"{len(broken)} env(s) cannot be built: {', '.join(broken)} (see above why).")
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
            if step >= MAX_PLAY_STEPS:
                print(
                    f"  stopped after {step} steps: the episode has not ended (does {args.env_id} have a step "
                    f"limit?); return so far {episode_return:+.3f}"
                )
                return 0
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
    from nlp_agents.plugins import describe

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
    """Train an agent on an env, print a progress bar, evaluate it, optionally save it.

    With ``--tensorboard DIR`` the agent writes its scalars to the run folder ``DIR/agent/env/seed-S``
    (:func:`nlp_agents.logger.run_folder`; an earlier run's event files there are replaced), and the
    evaluation's ``eval/final_normalized_score`` and ``eval/final_mean_return`` follow at the last step.
    """
    import nlp_agents
    from nlp_agents.base import MAX_LEARN_STEPS

    if args.steps > MAX_LEARN_STEPS:
        raise CommandLineError(
            f"--steps {args.steps:,} is more than one training takes (at most {MAX_LEARN_STEPS:,}); lower --steps."
        )
    # The evaluation's env (one slot per episode) is built once now, so that an --eval-episodes that
    # cannot fit in memory is refused before the training, not after it.
    try:
        gym.make_vec(
            args.env, num_envs=args.eval_episodes, vectorization_mode="vector_entry_point", **args.env_kwargs
        ).close()
    except ResourceLimitError as error:
        raise CommandLineError(
            f"--eval-episodes {args.eval_episodes}: the evaluation plays each episode in a slot of its own, and {error}"
        ) from None
    env = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **args.env_kwargs)
    logger = None
    try:
        agent = nlp_agents.make(args.agent, env, seed=args.seed, device=args.device, **args.hyperparams)
        if args.save is not None and not callable(getattr(agent, "save", None)):  # refused before the training
            raise CommandLineError(
                f"--save {args.save}: agent {args.agent!r} ({nlp_agents.available()[args.agent]}) has no "
                "save(path) method; train without --save, or use an agent that saves."
            )
        if args.tensorboard is not None:
            folder = run_folder(args.tensorboard, args.agent, args.env, args.seed)
            logger = open_logger(folder, agent, args.agent, replace=True)
            replaced = f"; replaced {logger.replaced} event file(s) of an earlier run there" if logger.replaced else ""
            print(
                f"TensorBoard scalars in {logger.log_dir}{replaced} "
                f"(view them with: tensorboard --logdir {args.tensorboard})"
            )
        print(f"training {args.agent} on {args.env} for {args.steps:,} steps (seed {args.seed}, {args.num_envs} envs)")
        with StepBar(args.steps) as bar:
            agent.learn(args.steps, callback=lambda _agent, done: bar.update(done))
            bar.update(args.steps)
        if args.save is not None:
            print(f"saved to {agent.save(args.save) or args.save}")
        result = nlp_envs.evaluate(
            args.env,
            agent,
            episodes=args.eval_episodes,
            seed=args.eval_seed,
            env_kwargs=args.env_kwargs,
        )
        if logger is not None:
            final = {
                "eval/final_normalized_score": result.normalized_score,
                "eval/final_mean_return": result.mean_return,
            }
            logger.scalars(final, int(getattr(agent, "num_timesteps", args.steps)))
    finally:
        env.close()
        if logger is not None:
            logger.close()
    print(
        f"evaluation: {args.agent} on {args.env}: mean return {result.mean_return:+.3f} over {args.eval_episodes} "
        f"episodes (seed {args.eval_seed}); normalised score {result.normalized_score:.3f} "
        f"(0 = random's {result.random_return:+.3f}, 1 = oracle's {result.oracle_return:+.3f})"
    )
    return 0


def add_agent_commands(commands: Any) -> None:
    """Add ``agents`` and ``train`` to the sub-command parser."""
    agents_command = commands.add_parser("agents", help="list the agents that plugins provide, and broken plugins")
    agents_command.set_defaults(handler=cmd_agents)

    train = commands.add_parser("train", help="train an agent on an env and evaluate it")
    train.add_argument("--agent", required=True, help="an agent name (see `nlp-envs agents`)")
    train.add_argument("--env", required=True, help="a registered id, e.g. nlp_envs/NextWordEasy-v0")
    train.add_argument("--steps", type=positive_int, required=True, help="env steps, all envs together")
    train.add_argument("--seed", type=_seed, default=0, help=f"0 to {MAX_SEED} (default: 0)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    train.add_argument("--num-envs", type=positive_int, default=8, help="parallel episodes (default: 8)")
    train.add_argument("--save", default=None, help="write the trained agent to this path (checked before training)")
    train.add_argument("--hyperparams", type=_hyperparams, default={}, help="JSON object of agent hyper-parameters")
    train.add_argument("--env-kwargs", type=_env_kwargs, default={}, help="JSON object of env keyword arguments")
    train.add_argument("--eval-episodes", type=positive_int, default=100, help="evaluation episodes (default: 100)")
    train.add_argument("--eval-seed", type=_seed, default=1_000_000, help="seed of the evaluation episodes")
    train.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="write TensorBoard scalars to the run folder DIR/agent/env/seed-S (needs nlp-envs[tensorboard])",
    )
    train.set_defaults(handler=cmd_train)


def _probability(text: str) -> float:
    """An argparse type: a number from 0 to 1 (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 (e.g. 0.3 for 30%), got {text!r}")
    return value


_COLLECT_OWN = ("policy", "epsilon", "episodes", "seed", "dataset_id", "env_kwargs", "num_envs")


def cmd_collect(args: argparse.Namespace) -> int:
    """Collect a logged dataset (named, or from ENV_ID and the flags) and print its size and speed."""
    import time
    import warnings

    from nlp_envs import offline
    from nlp_envs.offline.collection import DEFAULT_NUM_ENVS, HELD_OUT_SEEDS, env_steps_per_second

    given = [name for name in _COLLECT_OWN if getattr(args, name) is not None]
    if args.named is not None:
        if args.env_id is not None or given:
            extra = ["ENV_ID"] * (args.env_id is not None) + ["--" + name.replace("_", "-") for name in given]
            raise CommandLineError(
                f"--named {args.named} takes every setting from its definition; drop {', '.join(extra)}."
            )
        named = offline.named_datasets()
        if args.named not in named:
            raise CommandLineError(
                f"--named {args.named!r} is not a named dataset; the named ones are {', '.join(named)}."
            )
        entry = named[args.named]
        env_id, policy, epsilon, episodes, seed = entry.env_id, entry.policy, entry.epsilon, entry.episodes, entry.seed
        num_envs, env_kwargs = entry.num_envs, entry.env_kwargs
    else:
        missing = [f"--{name}" for name in ("policy", "epsilon", "episodes", "seed") if getattr(args, name) is None]
        if args.env_id is None or missing:
            what = ", ".join((["ENV_ID"] if args.env_id is None else []) + missing)
            raise CommandLineError(f"collect needs {what} (or --named NAME); see `{PROG} collect --help`.")
        env_id, policy, epsilon, episodes, seed = args.env_id, args.policy, args.epsilon, args.episodes, args.seed
        num_envs, env_kwargs = args.num_envs or DEFAULT_NUM_ENVS, args.env_kwargs or {}
    print(f"collecting {episodes:,} episodes of {policy} with {epsilon:g} random acts on {env_id} (seed {seed})")
    timing: list[float] = []
    with StepBar(episodes, unit="episodes") as bar, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="collect: episodes seeded")  # said below, in one line

        def progress(done: int, total: int) -> None:
            bar.update(done)
            timing.append(time.perf_counter())  # the first call starts the loop, the last ends it

        if args.named is not None:
            dataset = offline.build_named(args.named, progress=progress)
        else:
            dataset = offline.collect(
                env_id,
                policy,
                epsilon=epsilon,
                episodes=episodes,
                seed=seed,
                dataset_id=args.dataset_id,
                num_envs=num_envs,
                env_kwargs=env_kwargs,
                progress=progress,
            )
    ours = dataset.storage.metadata["nlp_envs"]
    steps = dataset.total_steps
    rate = steps / max(timing[-1] - timing[0], 1e-9)
    slots = ours["num_envs"]
    own = env_steps_per_second(env_id, num_envs=slots, steps=max(1, steps // slots), env_kwargs=env_kwargs, seed=seed)
    score = ours["behaviour_normalized_score"]
    print(
        f"wrote {dataset.spec.dataset_id}: {dataset.total_episodes:,} episodes, {steps:,} transitions, "
        f"in {dataset.spec.data_path}"
    )
    print(f"speed: {rate:,.0f} transitions/s collected; the env alone, random acts: {own:,.0f} steps/s ({slots} slots)")
    print(
        f"references on {ours['eval_episodes']} evaluation episodes (seed {ours['eval_seed']}): random "
        f"{ours['random_return']:+.3f}, oracle {ours['oracle_return']:+.3f}, behaviour {ours['behaviour_return']:+.3f} "
        f"(normalised {'undefined' if score is None else f'{score:.3f}'})"
    )
    if ours["holds_evaluation_episodes"]:
        print(f"note: the dataset holds evaluation episodes; collect with --seed >= {HELD_OUT_SEEDS} to hold them out")
    return 0


def add_collect_command(commands: Any) -> None:
    """Add ``collect`` (logged datasets for offline RL) to the sub-command parser."""
    collect = commands.add_parser("collect", help="log a policy's episodes into a Minari dataset (offline RL)")
    collect.add_argument("env_id", nargs="?", default=None, help="a registered id, e.g. nlp_envs/Dialogue-v0")
    collect.add_argument(
        "--named", default=None, help="build a named dataset instead, e.g. nlp_envs/dialogue-rule-eps30-v0"
    )
    collect.add_argument(
        "--policy", default=None, help="a reference policy (see `nlp-envs envs`) or a saved agent file"
    )
    collect.add_argument("--epsilon", type=_probability, default=None, help="rate of random allowed acts, 0 to 1")
    collect.add_argument("--episodes", type=positive_int, default=None, help="how many episodes")
    collect.add_argument("--seed", type=_seed, default=None, help="episode k is seeded seed + k (use >= 262144)")
    collect.add_argument("--dataset-id", default=None, help="Minari id namespace/name-vN (default: from the arguments)")
    collect.add_argument("--num-envs", type=positive_int, default=None, help="vector slots (default: 64)")
    collect.add_argument("--env-kwargs", type=_env_kwargs, default=None, help="JSON object of env keyword arguments")
    collect.set_defaults(handler=cmd_collect)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nlp-envs`` with one sub-command per verb."""
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    debug_help = "show the traceback of an error"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    commands = parser.add_subparsers(dest="command", required=True)

    envs = commands.add_parser("envs", help="list the registered environments")
    envs.set_defaults(handler=cmd_envs)

    play = commands.add_parser("play", help="play one episode of a reference policy")
    play.add_argument("env_id", help="a registered id, e.g. nlp_envs/NextWord-v0")
    play.add_argument("--policy", default="oracle", help="reference policy name (default: oracle)")
    play.add_argument("--seed", type=_seed, default=0, help=f"0 to {MAX_SEED} (default: 0)")
    play.add_argument("--env-kwargs", type=_env_kwargs, default={}, help="JSON object of env keyword arguments")
    play.set_defaults(handler=cmd_play)

    add_agent_commands(commands)
    add_collect_command(commands)
    leaderboard_commands.add_commands(commands)
    # ``--debug`` also works after the sub-command; SUPPRESS keeps a sub-command's default from
    # overwriting a ``--debug`` given before it.
    for command in commands.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


# --- one way to end -------------------------------------------------------------------------------

# Errors of the user's making, reported as one line with exit code 2. The project's own errors are
# ValueErrors (HyperparameterError, SuiteError, DataFileError, ...) or ModuleNotFoundErrors (a
# missing data package); OSError is a path the user gave that cannot be read or written; a
# DivergedError is a run the user's hyper-parameters made diverge (its message says which).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    DivergedError,
    gym.error.Error,
    ModuleNotFoundError,
    ResultStoreError,
    OSError,
)


def describe_error(error: BaseException) -> tuple[str, int]:
    """The one line (without the program name) and the exit code that report ``error``."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)", EXIT_INTERRUPTED
    # The project raises KeyError with a sentence for an unknown name (a dataset, a reference
    # policy); a bare ``KeyError('x')`` is a bug, reported as internal.
    if isinstance(error, KeyError) and error.args and isinstance(error.args[0], str) and " " in error.args[0]:
        return f"error: {error.args[0]}", EXIT_USER_ERROR
    if isinstance(error, OSError) and error.filename is not None:
        return f"error: {str(error.filename)!r}: {error.strerror or error}", EXIT_USER_ERROR
    if isinstance(error, MemoryError):
        return "error: out of memory; use smaller sizes (fewer envs, a smaller buffer or network).", EXIT_USER_ERROR
    if isinstance(error, USER_ERRORS):
        text = " ".join(str(error).split()) or type(error).__name__
        return f"error: {text}", EXIT_USER_ERROR
    text = " ".join(str(error).split())
    return (
        f"internal error: {type(error).__name__}: {text} (run again with --debug for the traceback)",
        EXIT_INTERNAL_ERROR,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; every error is one line on standard error and a non-zero exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 2 for a user error, 1 for an internal error, 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # known before parsing, so that a failure while parsing honours it
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        check_arguments(args)
        return int(args.handler(args))
    except (Exception, KeyboardInterrupt) as error:
        line, code = describe_error(error)
        if debug:
            traceback.print_exception(error, file=sys.stderr)
        print(f"{PROG}: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
