"""Inputs that earlier hardening let through: each test pins one defect found by attacking the CLI and API.

Every case is accepted and correct, or refused with one line (exit 2) that names the input, what is
wrong and what is expected; nothing the user gave is lost or overwritten.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp_envs import cli
from nlp_envs.cli import main
from nlp_envs.leaderboard.store import ResultStore
from tests.test_leaderboard import result

EASY = "nlp_envs/NextWordEasy-v0"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a refused command printed on standard error."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("nlp-envs: error: "), lines[0]
    return lines[0]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A results database with two agents of three seeds each on one env."""
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        for seed in range(3):
            for agent, score in (("a", 0.5), ("b", 0.7)):
                store.add(result(agent=agent, seed=seed, env_id=EASY, normalized_score=score))
    return path


# --- an output path that is an input ----------------------------------------------------------------


@pytest.mark.parametrize("target", ["db", "link", "wal", "journal"])
def test_leaderboard_output_is_never_the_database_it_reads(database: Path, target: str, capsys) -> None:
    before = database.read_bytes()
    output = {
        "db": database,
        "link": database.with_name("link.sqlite"),
        "wal": Path(f"{database}-wal"),
        "journal": Path(f"{database}.pending.jsonl"),
    }[target]
    if target == "link":
        output.symlink_to(database)
    assert main(["leaderboard", "--db", str(database), "--output", str(output)]) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "--output" in line and "--db" in line and "choose another --output path" in line
    assert database.read_bytes() == before
    with ResultStore(database, readonly=True) as store:
        assert len(store.results()) == 6
    # Another path still works.
    assert main(["leaderboard", "--db", str(database), "--output", str(database.with_name("board.md"))]) == 0


def test_train_save_is_never_a_data_file_of_its_env_kwargs(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus.txt"
    text = "the cat sat on the mat\nthe dog sat on the log\n"
    corpus.write_text(text)
    argv = ["train", "--agent", "random", "--env", EASY, "--steps", "8", "--eval-episodes", "1"]
    argv += ["--env-kwargs", f'{{"corpus": "{corpus}"}}', "--save", str(corpus)]
    assert main(argv) == cli.EXIT_USER_ERROR
    line = one_error_line(capsys)
    assert "--save" in line and "--env-kwargs corpus" in line
    assert corpus.read_text() == text
