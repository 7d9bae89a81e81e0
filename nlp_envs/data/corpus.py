"""Sentence corpora for NextWord: the chitchat chats, or a user's own text file, loaded offline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nlp_envs.data import CHITCHAT
from nlp_envs.data.files import read_texts
from nlp_envs.data.text import in_test_split, sentences


@dataclass(frozen=True)
class SentenceCorpus:
    """Tokenized sentences split into train (for the vocabulary and models) and test (for prompts)."""

    name: str
    train: tuple[tuple[str, ...], ...]
    test: tuple[tuple[str, ...], ...]


@lru_cache(maxsize=4)
def load_corpus(name_or_path: str) -> SentenceCorpus:
    """Load ``"chitchat"`` or a user file (``.txt`` one text per line, ``.csv``/``.jsonl`` with ``text``).

    Chitchat is split by conversation (10% of conversations are test), a user file by line.
    """
    if name_or_path == CHITCHAT.name:
        return _load_chitchat()
    train: list[tuple[str, ...]] = []
    test: list[tuple[str, ...]] = []
    for row, text in enumerate(read_texts(Path(name_or_path))):
        split = test if in_test_split(f"{row}:{text}") else train
        split.extend(tuple(sentence) for sentence in sentences(text))
    if not train or not test:
        raise ValueError(
            f"Corpus {name_or_path!r} gives {len(train)} training and {len(test)} test sentences; "
            "both splits need sentences, so give a file with at least a few dozen texts."
        )
    return SentenceCorpus(str(name_or_path), tuple(train), tuple(test))


def _load_chitchat() -> SentenceCorpus:
    with open(CHITCHAT.location() / "dataset.json", encoding="utf-8") as file:
        conversations = json.load(file)
    train: list[tuple[str, ...]] = []
    test: list[tuple[str, ...]] = []
    for conversation_id, conversation in conversations.items():
        split = test if in_test_split(conversation_id) else train
        for message in conversation["messages"]:
            for utterance in message:
                split.extend(tuple(sentence) for sentence in sentences(utterance["text"]))
    return SentenceCorpus(CHITCHAT.name, tuple(train), tuple(test))
