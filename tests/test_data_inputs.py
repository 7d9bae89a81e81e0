"""User data files through gym.make: accepted and read correctly, or refused in one line naming file and row/key."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nlp_envs  # noqa: F401 - registers the ids
from nlp_envs.data import corpus as corpus_module
from nlp_envs.data.corpus import CorpusCacheWarning, load_corpus
from nlp_envs.data.documents import load_documents
from nlp_envs.data.files import DataFileError, read_texts
from nlp_envs.data.ontology import ONTOLOGY_DIR, OntologyError

CLASSIFY = "nlp_envs/TextClassification-v0"
ROOT = Path(__file__).resolve().parents[1]


def rows(count: int = 20) -> list[dict[str, str]]:
    """Distinct documents of two labels, enough for the 4:1 split of each label."""
    good = [{"text": f"good great fine movie number{i}", "label": "pos"} for i in range(count)]
    bad = [{"text": f"bad awful poor movie number{i}", "label": "neg"} for i in range(count)]
    return good + bad


def write_jsonl(path: Path, records: list, raw_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + "".join(raw_lines))
    return path


def write_csv(path: Path, records: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def test_a_csv_field_over_128_kib_is_read_whole(tmp_path) -> None:
    records = rows()
    long_text = "word " * 60_000  # 300 kB, over csv's default 131072-character field limit
    records[0] = {"text": long_text, "label": "pos"}
    path = write_csv(tmp_path / "long.csv", records)
    gym.make(CLASSIFY, dataset=str(path)).close()
    documents = load_documents(str(path))
    assert long_text.strip() in documents.train_texts + documents.test_texts
    # The process-wide csv limit is left as it was.
    assert csv.field_size_limit() == 131072


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_line_separators_inside_strings_are_text_not_row_ends(tmp_path, suffix) -> None:
    records = rows()
    records[3] = {"text": "good\u2028great\u0085fine\u2029stuff here", "label": "pos"}
    path = tmp_path / f"sep{suffix}"
    write_jsonl(path, records) if suffix == ".jsonl" else write_csv(path, records)
    gym.make(CLASSIFY, dataset=str(path)).close()
    documents = load_documents(str(path))
    assert records[3]["text"] in documents.train_texts + documents.test_texts
    assert len(documents.train_texts) + len(documents.test_texts) == len(records)


def test_a_deeply_nested_jsonl_line_is_named(tmp_path) -> None:
    path = write_jsonl(tmp_path / "deep.jsonl", rows(), raw_lines=("[" * 100_000 + "]" * 100_000 + "\n",))
    with pytest.raises(DataFileError, match=r"deep\.jsonl': line 41 is nested too deeply"):
        gym.make(CLASSIFY, dataset=str(path))


@pytest.mark.parametrize("bad", [None, ["pos"], {"name": "pos"}], ids=["null", "list", "object"])
def test_a_null_or_structured_label_is_refused_not_stringified(tmp_path, bad) -> None:
    records = rows()
    records[6] = {"text": "good stuff", "label": bad}
    path = write_jsonl(tmp_path / "null.jsonl", records)
    shown = "null" if bad is None else type(bad).__name__
    with pytest.raises(DataFileError, match=rf"null\.jsonl': row 7 has {shown} in column 'label'"):
        gym.make(CLASSIFY, dataset=str(path))


def test_a_repeated_key_in_a_jsonl_row_is_refused(tmp_path) -> None:
    line = '{"text": "good stuff", "label": "pos", "label": "neg"}\n'
    path = write_jsonl(tmp_path / "twice.jsonl", rows(), raw_lines=(line,))
    with pytest.raises(DataFileError, match=r"twice\.jsonl': line 41 repeats the key 'label'"):
        gym.make(CLASSIFY, dataset=str(path))


def test_a_folder_given_as_a_file_is_called_a_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    for name in ("docs.csv", "corpus.txt", "ontology.json", "catalog.csv"):
        (tmp_path / name).mkdir()
    cases = [
        (DataFileError, CLASSIFY, {"dataset": str(tmp_path / "docs.csv")}),
        (DataFileError, "nlp_envs/NextWordEasy-v0", {"corpus": str(tmp_path / "corpus.txt")}),
        (OntologyError, "nlp_envs/Dialogue-v0", {"ontology": str(tmp_path / "ontology.json")}),
        (
            DataFileError,
            "nlp_envs/Recommendation-v0",
            {"catalog": str(tmp_path / "catalog.csv"), "ratings": str(tmp_path / "r.csv")},
        ),
    ]
    for error, env_id, kwargs in cases:
        with pytest.raises(error, match=r"is a folder, not a file") as raised:
            gym.make(env_id, **kwargs)
        assert str(next(iter(kwargs.values()))) in str(raised.value)
        assert "does not exist" not in str(raised.value)


def test_a_text_file_with_line_separators_keeps_its_texts(tmp_path) -> None:
    path = tmp_path / "texts.jsonl"
    write_jsonl(path, [{"text": "one\u2028two"}, {"text": "three"}])
    assert read_texts(path) == ["one\u2028two", "three"]


# Ontologies --------------------------------------------------------------------------------------


def bank() -> dict:
    return json.loads((ONTOLOGY_DIR / "bank.json").read_text(encoding="utf-8"))


def write_ontology(tmp_path: Path, text: str) -> str:
    path = tmp_path / "onto.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_repeated_ontology_key_is_refused_naming_it(tmp_path) -> None:
    text = json.dumps(bank(), indent=1)
    slot = next(iter(bank()["slots"]))
    # Repeat the first slot's "values" key inside its object: json would keep the last silently.
    needle = f'"{slot}": {{\n'
    assert needle in text
    text = text.replace(needle, needle + '  "values": ["x", "y"],\n', 1)
    path = write_ontology(tmp_path, text)
    with pytest.raises(OntologyError, match=r"onto\.json' repeats the key 'values' in one object"):
        gym.make("nlp_envs/Dialogue-v0", ontology=path)


def test_a_deeply_nested_ontology_is_named(tmp_path) -> None:
    path = write_ontology(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(OntologyError, match=r"onto\.json' is nested too deeply"):
        gym.make("nlp_envs/Dialogue-v0", ontology=path)


@pytest.mark.parametrize(
    "field",
    ["{value:d}", "{value:>100000000}", "{value!r}", "{value.upper}", "{value[0]}", "{}", "{0}", "{value:{value}}"],
)
def test_ontology_templates_allow_plain_fields_only(tmp_path, field) -> None:
    data = bank()
    slot = next(iter(data["slots"]))
    data["slots"][slot]["inform"] = [f"It is {{value}} and {field}."]
    path = write_ontology(tmp_path, json.dumps(data))
    with pytest.raises(OntologyError) as raised:
        gym.make("nlp_envs/Dialogue-v0", ontology=path)
    message = str(raised.value)
    assert "onto.json" in message and f"slot {slot!r}" in message and "'inform'" in message
    assert "\n" not in message
    if field != "{0}":  # "{0}" is a plain but unknown field: the unknown-field error names it
        assert "not a plain field" in message


def test_the_builtin_ontology_still_renders(tmp_path) -> None:
    env = gym.make("nlp_envs/Dialogue-v0", render_mode="ansi")
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    assert isinstance(env.render(), str)


# The corpus cache ---------------------------------------------------------------------------------


def _corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"we met {i} times. then we left at {i % 9}" for i in range(80)), encoding="utf-8")
    return path


def _same(a, b) -> None:
    assert a.types == b.types and a.train_types == b.train_types
    for split in ("train", "test"):
        np.testing.assert_array_equal(a.ids[split], b.ids[split])
        np.testing.assert_array_equal(a.lengths[split], b.lengths[split])


def _fresh_cache(tmp_path: Path, monkeypatch) -> tuple[Path, Path, object]:
    monkeypatch.setenv("NLP_ENVS_CACHE", str(tmp_path / "cache"))
    source = _corpus_file(tmp_path)
    fresh = load_corpus.__wrapped__(str(source))
    (cache,) = (tmp_path / "cache").glob("*.npz")
    return source, cache, fresh


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_a_truncated_corpus_cache_is_named_and_rebuilt(tmp_path, monkeypatch, fraction) -> None:
    source, cache, fresh = _fresh_cache(tmp_path, monkeypatch)
    data = cache.read_bytes()
    cache.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(CorpusCacheWarning, match=rf"cache file '{re.escape(str(cache))}' is unusable"):
        _same(load_corpus.__wrapped__(str(source)), fresh)
    assert cache.read_bytes() == data  # rebuilt, byte for byte
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(load_corpus.__wrapped__(str(source)), fresh)
    assert not list(cache.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_a_corrupt_or_foreign_corpus_cache_is_rebuilt(tmp_path, monkeypatch) -> None:
    source, cache, fresh = _fresh_cache(tmp_path, monkeypatch)
    data = bytearray(cache.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = b"\x00" * 64  # bytes flipped inside a member: bad CRC
    variants = {"flipped": bytes(data)}
    for name, arrays in {
        "wrong dtype": {"train_ids": fresh.ids["train"].astype(np.float64)},
        "wrong shape": {"test_lengths": fresh.lengths["test"][:, None]},
        "ids out of range": {"train_ids": fresh.ids["train"] + 10_000},
        "lengths disagree": {"test_lengths": fresh.lengths["test"][:-1]},
        "member missing": {"train_types": None},
    }.items():
        with np.load(cache) as stored:
            members = {key: stored[key] for key in stored.files}
        members.update(arrays)
        members = {key: value for key, value in members.items() if value is not None}
        buffer = io.BytesIO()
        np.savez(buffer, **members)
        variants[name] = buffer.getvalue()
    good = cache.read_bytes()
    for name, content in variants.items():
        cache.write_bytes(content)
        corpus_module._WARNED.clear()
        with pytest.warns(CorpusCacheWarning, match="is unusable"):
            _same(load_corpus.__wrapped__(str(source)), fresh)
        assert cache.read_bytes() == good, name


def test_a_truncated_cache_no_longer_breaks_next_word(tmp_path) -> None:
    source = _corpus_file(tmp_path)
    code = (
        "import warnings, gymnasium as gym, nlp_envs\n"
        "warnings.simplefilter('always')\n"
        f"env = gym.make('nlp_envs/NextWordEasy-v0', corpus={str(source)!r})\n"
        "env.reset(seed=0)\n"
        "print('OK')\n"
    )
    environment = {**os.environ, "NLP_ENVS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}

    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", code]
        return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120)

    assert run().returncode == 0
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    result = run()
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    assert f"corpus cache file {str(cache)!r} is unusable" in result.stderr
    assert run().stderr.count("is unusable") == 0
