"""Trust audit 6: offline datasets, TensorBoard folders, env plugins and reports, attacked again.

Each test fails on the code before its fix: a lost or stale result, a silently wrong one, or an
error that does not name its input.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp_envs.offline import DatasetError, collect

MASKED = "nlp_envs/DialogueEasy-v0"
SMALL = {"episodes": 4, "seed": 300_000, "num_envs": 2, "eval_episodes": 2, "dataset_id": "nlp_envs/audit-v0"}


def test_a_minari_folder_that_is_a_file_is_named_before_any_episode_is_played(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "file"))
    played: list[int] = []
    with pytest.raises(
        DatasetError, match=r"folder '.*file' \(MINARI_DATASETS_PATH.* is not a writable folder"
    ) as caught:
        collect(MASKED, "rule", epsilon=0.0, progress=lambda done, total: played.append(done), **SMALL)
    assert "\n" not in str(caught.value)
    assert played == []  # refused before the collection, not after it


def test_a_dataset_written_under_the_id_while_collecting_is_kept_not_deleted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    theirs = tmp_path / "nlp_envs" / "audit-v0" / "data" / "theirs.txt"

    def another_process_writes_the_id(done: int, total: int) -> None:
        theirs.parent.mkdir(parents=True, exist_ok=True)
        theirs.write_text("another collection's dataset")

    with pytest.raises(DatasetError, match=r"'nlp_envs/audit-v0' exists already"):
        collect(MASKED, "rule", epsilon=0.0, progress=another_process_writes_the_id, **SMALL)
    assert theirs.read_text() == "another collection's dataset"
