"""Logged data for offline RL: the transitions an offline agent learns from.

:class:`Transitions` is the contract between the dataset side (collection into Minari datasets and
their loading, in this package) and the offline agents (``bc``, ``cql``): an agent reads nothing
but these arrays and the env the dataset was collected on.

The dataset side: :func:`collect` writes a Minari dataset from any policy, :func:`load_transitions`
reads one back as :class:`Transitions` (a :class:`DatasetError` when it cannot), and
:func:`named_datasets`/:func:`build_named` define and build the project's named datasets. Minari is
imported only when a dataset is written or read (``pip install 'nlp-envs[offline]'``).
"""

from __future__ import annotations

from nlp_envs.offline.collection import collect, default_dataset_id
from nlp_envs.offline.datasets import DatasetError, dataset_hash, dataset_metadata, load_transitions
from nlp_envs.offline.named import NamedDataset, build_named, named_datasets
from nlp_envs.offline.transitions import Transitions

__all__ = [
    "DatasetError",
    "NamedDataset",
    "Transitions",
    "build_named",
    "collect",
    "dataset_hash",
    "dataset_metadata",
    "default_dataset_id",
    "load_transitions",
    "named_datasets",
]
