"""Shared fixtures: no network for any test, seeded generators, the registered env ids."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import nlp_envs


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to open a network connection: data must load offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in the nlp-envs test suite")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


ENV_IDS = nlp_envs.env_ids()
