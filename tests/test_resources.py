"""Sizes have an upper bound: memory estimated before allocating, refused with the figure and the limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import nlp_envs  # noqa: F401 - registers the ids
from nlp_envs import resources
from nlp_envs.cli import main as cli_main
from nlp_envs.resources import LIMIT_VARIABLE, ResourceLimitError, available_memory_bytes, check_fits

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def limit_4g(monkeypatch):
    monkeypatch.setenv(LIMIT_VARIABLE, "4G")


@pytest.mark.parametrize(
    ("kwargs", "limit", "largest"),
    [
        ({"vocab_size": 50_000}, "4G", "vocabulary tables"),
        ({"vocab_size": 10**7}, "4G", "vocabulary tables"),
        ({"max_words": 10_000}, "4G", "held-out sentences"),
        ({"context": 1_000}, "256M", "held-out sentences"),
        ({"prompt_words": 1_000}, "256M", "held-out sentences"),
        ({"vocab_size": 30_000, "observation": "embedding"}, "4G", "vocabulary tables"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else value,
)
def test_next_word_sizes_that_cannot_fit_are_refused_before_allocating(monkeypatch, kwargs, limit, largest) -> None:
    # Sizes within NextWord's hard bounds (larger ones are refused by them, see test_next_word.py).
    monkeypatch.setenv(LIMIT_VARIABLE, limit)
    with pytest.raises(ResourceLimitError) as raised:
        gym.make("nlp_envs/NextWord-v0", **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    name, value = next(iter(kwargs.items()))
    assert f"{name}={value}" in message and f"most for the {largest}" in message
    shown_limit = "4.0 GiB" if limit == "4G" else "256.0 MiB"
    assert f"iB of memory, more than the {shown_limit} limit (NLP_ENVS_MEMORY_LIMIT)" in message


def test_many_episode_slots_are_refused(limit_4g) -> None:
    with pytest.raises(ResourceLimitError, match=r"num_envs=100000000 \(most for the episode slots"):
        gym.make_vec("nlp_envs/NextWordEasy-v0", num_envs=10**8, vectorization_mode="vector_entry_point")


def test_what_fits_still_builds(limit_4g) -> None:
    env = gym.make("nlp_envs/NextWord-v0")
    env.reset(seed=0)
    env.close()


def test_cli_refusal_is_one_line(limit_4g, capsys) -> None:
    code = cli_main(["play", "nlp_envs/NextWord-v0", "--env-kwargs", '{"vocab_size": 50000}'])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("nlp-envs: error: nlp_envs/NextWord-v0 with vocab_size=50000") and "limit" in err


@pytest.mark.parametrize("observation", ["tokens", "embedding"])
def test_the_estimate_covers_the_measured_peak(observation) -> None:
    # In a fresh process (no cached tables): tracemalloc's peak while making the env must not exceed
    # the estimate, and the estimate must not be more than twice the peak.
    code = """
import json, tracemalloc, gymnasium as gym, nlp_envs
from nlp_envs import next_word
seen = {}
next_word.check_fits = lambda what, needed: seen.setdefault("needed", needed)
tracemalloc.start()
gym.make("nlp_envs/NextWord-v0", vocab_size=2500, observation=OBSERVATION, embedding_dim=16)
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "needed": seen["needed"]}))
"""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = code.replace("OBSERVATION", repr(observation))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["peak"] <= figures["needed"] <= 2 * figures["peak"], figures


def test_memory_limit_variable(monkeypatch) -> None:
    for text, expected in (("1024", 1024), ("8G", 8 * 1024**3), ("1.5 GiB", int(1.5 * 1024**3)), ("512m", 512 << 20)):
        monkeypatch.setenv(LIMIT_VARIABLE, text)
        assert available_memory_bytes() == expected
    monkeypatch.setenv(LIMIT_VARIABLE, "lots")
    with pytest.raises(ValueError, match="NLP_ENVS_MEMORY_LIMIT='lots' is not a size"):
        available_memory_bytes()


def test_measured_limit_reads_meminfo_and_cgroups(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  16000000 kB\nMemFree:  1000 kB\nMemAvailable:  8000000 kB\n")
    assert resources._meminfo_available(meminfo) == 8_000_000 * 1024
    assert resources._meminfo_available(tmp_path / "missing") is None
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("100\n")
    assert resources._cgroup_available(cgroup) is None
    (cgroup / "memory.max").write_text("1000\n")
    assert resources._cgroup_available(cgroup) == 900
    monkeypatch.setattr(resources, "_meminfo_available", lambda: 5000)
    monkeypatch.setattr(resources, "_cgroup_available", lambda: 900)
    assert available_memory_bytes() == 900  # the tighter of the two
    monkeypatch.setattr(resources, "_cgroup_available", lambda: None)
    assert available_memory_bytes() == 5000
    assert available_memory_bytes.__module__ == "nlp_envs.resources"


def test_check_fits_names_the_figures(monkeypatch) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, "1G")
    check_fits("a small thing", 1024**3)
    with pytest.raises(
        ResourceLimitError, match=r"^a big thing needs about 2\.0 GiB of memory, more than the 1\.0 GiB"
    ):
        check_fits("a big thing", 2 * 1024**3)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "num_envs", "named"),
    [
        ("nlp_envs/SentimentBandit-v0", {"max_words": 100_000}, 1, "max_words=100000"),
        ("nlp_envs/TextClassification-v0", {"observation": "counts"}, 100_000, "num_envs=100000"),
        ("nlp_envs/DialogueEasy-v0", {"max_turns": 10_000}, 100_000, "max_turns=10000, num_envs=100000"),
        ("nlp_envs/Recommendation-v0", {"max_steps": 10_000}, 100_000, "max_steps=10000"),
    ],
    ids=["classification-words", "classification-counts", "dialogue-turns", "recommendation-steps"],
)
def test_every_task_refuses_sizes_that_cannot_fit(monkeypatch, env_id, kwargs, num_envs, named) -> None:
    # Sizes within each task's hard bounds that a 256 MiB limit cannot hold: refused with the figures.
    monkeypatch.setenv(LIMIT_VARIABLE, "256M")
    with pytest.raises(ResourceLimitError) as raised:
        gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    message = str(raised.value)
    assert "\n" not in message and named in message
    assert "of memory, more than the 256.0 MiB limit (NLP_ENVS_MEMORY_LIMIT)" in message
