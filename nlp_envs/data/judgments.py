"""Graded relevance judgments for the ranking task: MovieLens users as queries, or a user's own files.

:func:`movielens_judgments` turns MovieLens-100k into a learning-to-rank collection: a query is a
user, its judged documents are the movies that user rated in the held-out 10% of the ratings
(the split of :func:`nlp_envs.data.movielens.heldout_mask`), and the relevance is the rating.
Every feature comes from the other 90% only (the factor model of
:func:`nlp_envs.data.movielens.fit_factors`, counts and averages), so no feature carries a label.

:func:`file_judgments` reads a user's own LETOR-style pair of files: a judgments file with the
columns ``query``, ``document`` and ``relevance`` (a number >= 0), and a features file with a
``document`` column, an optional ``title`` column, and numeric feature columns.

Queries are split into train (80%) and test (20%) by a fixed draw, so that a ranker can be trained
on some queries and scored on others.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nlp_envs.data.files import DataFileError, JSONProblem, file_cache, parse_json, read_table
from nlp_envs.data.movielens import fit_factors, heldout_mask, load_ratings
from nlp_envs.data.simulator import BAYES_PRIOR, FACTOR_BOUND, _percentile

SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.2
JUDGMENT_COLUMNS = ("query", "document", "relevance")
MOVIELENS_RELEVANT = 4.0  # a rating of 4 or 5 counts as relevant (precision at 1)
FILE_RELEVANT = 1.0  # LETOR's convention: relevance 1 or more is relevant
MAX_RELEVANCE = 30.0  # gains are 2**relevance - 1: beyond this they stop being exact in float64
_SPLIT_SEED = 20261201


@dataclass(frozen=True)
class Judgments:
    """A learning-to-rank collection: queries, their judged documents, and label-free features.

    The judged (query, document) pairs are stored query by query: the pairs of query ``q`` are
    ``offsets[q]`` to ``offsets[q + 1]`` of the pair arrays.

    Attributes:
        name: ``"ml-100k"`` or ``"judgments file 'PATH'"``.
        query_names: a display name per query (``"user 12"``, or the query id of a file).
        titles: a display title per document, an object array.
        query_features: ``(queries, Fq)`` float32: what is known of the query (the user profile).
        document_features: ``(documents, Fd)`` float32: what is known of each document.
        pair_features: ``(pairs, Fp)`` float32: what is known of each (query, document) pair.
        feature_names: the names of the ``Fd + Fp`` per-candidate features, in order.
        query_feature_names: the names of the ``Fq`` query features.
        offsets: ``(queries + 1,)`` int64, where each query's pairs start in the pair arrays.
        documents: ``(pairs,)`` int64, the document of each pair.
        relevance: ``(pairs,)`` float64, the graded relevance of each pair (the hidden label).
        popularity: ``(documents,)`` float64, what the ``popular`` policy ranks by.
        pointwise: ``(pairs,)`` float64, what the ``pointwise`` policy ranks by (a supervised
            score fitted to training data only).
        test: ``(queries,)`` bool, the queries of the test split.
        relevant: the relevance from which a document counts as relevant (precision at 1).
        relevance_range: ``(low, high)`` of the relevance scale.
    """

    name: str
    query_names: tuple[str, ...]
    titles: np.ndarray
    query_features: np.ndarray
    document_features: np.ndarray
    pair_features: np.ndarray
    feature_names: tuple[str, ...]
    query_feature_names: tuple[str, ...]
    offsets: np.ndarray
    documents: np.ndarray
    relevance: np.ndarray
    popularity: np.ndarray
    pointwise: np.ndarray
    test: np.ndarray
    relevant: float
    relevance_range: tuple[float, float]

    @property
    def num_queries(self) -> int:
        """The number of queries with at least one judged document."""
        return len(self.query_names)

    def queries(self, split: str, min_documents: int) -> np.ndarray:
        """The queries of ``split`` with at least ``min_documents`` judged documents, in index order."""
        counts = np.diff(self.offsets)
        chosen = counts >= min_documents
        if split != "all":
            chosen &= self.test if split == "test" else ~self.test
        return np.flatnonzero(chosen)


def _test_queries(count: int) -> np.ndarray:
    """The fixed 20% of queries in the test split (the same on every machine)."""
    return np.random.default_rng(_SPLIT_SEED).random(count) < TEST_FRACTION


def _freeze(judgments: Judgments) -> Judgments:
    for value in vars(judgments).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return judgments


@lru_cache(maxsize=2)
def movielens_judgments() -> Judgments:
    """MovieLens-100k as a ranking collection (cached per process; about a second).

    Query features (the user profile, from the training ratings): the user's 8 factors (in
    population standard deviations, clipped to +-5), their bias, their mean rating (0 for 1, 1 for
    5) and their activity (percentile of their number of ratings). Document features: the movie's
    8 factors (scaled the same way), its bias, its popularity (percentile of its number of training
    ratings) and its mean training rating (a Bayesian average, 0 for 1, 1 for 5). Pair feature: the
    genre match, the cosine between the movie's genres and the genres of the movies the user rated.
    """
    data = load_ratings()
    model = fit_factors()
    held_out = heldout_mask(len(data.ratings))
    train = ~held_out
    users, items, ratings = data.users[train], data.items[train], data.ratings[train]
    low, high = float(data.ratings.min()), float(data.ratings.max())

    def scaled(values: np.ndarray) -> np.ndarray:
        return (values - low) / (high - low)

    item_counts = np.bincount(items, minlength=data.num_items).astype(np.float64)
    global_mean = float(ratings.mean())
    item_mean = (np.bincount(items, ratings, minlength=data.num_items) + BAYES_PRIOR * global_mean) / (
        item_counts + BAYES_PRIOR
    )
    popularity = _percentile(np.log1p(item_counts))
    rated = item_counts > 0
    item_scale = model.item_factors[rated].std(axis=0) + 1e-9
    item_factors = np.clip(model.item_factors / item_scale, -FACTOR_BOUND, FACTOR_BOUND)
    document_features = np.column_stack(
        [item_factors, np.clip(model.item_bias, -FACTOR_BOUND, FACTOR_BOUND), popularity, scaled(item_mean)]
    )

    user_counts = np.bincount(users, minlength=data.num_users).astype(np.float64)
    user_mean = np.bincount(users, ratings, minlength=data.num_users) / np.maximum(user_counts, 1.0)
    user_scale = model.user_factors.std(axis=0) + 1e-9
    user_factors = np.clip(model.user_factors / user_scale, -FACTOR_BOUND, FACTOR_BOUND)
    query_features = np.column_stack(
        [
            user_factors,
            np.clip(model.user_bias, -FACTOR_BOUND, FACTOR_BOUND),
            scaled(np.where(user_counts > 0, user_mean, global_mean)),
            _percentile(np.log1p(user_counts)),
        ]
    )
    genres = data.genres.astype(np.float64)
    user_genres = np.zeros((data.num_users, genres.shape[1]))
    np.add.at(user_genres, users, genres[items])

    # The held-out ratings, user by user: the judged pairs.
    order = np.flatnonzero(held_out)[np.argsort(data.users[held_out], kind="stable")]
    pair_users, pair_items = data.users[order], data.items[order]
    queries, counts = np.unique(pair_users, return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    norms = np.linalg.norm(user_genres[pair_users], axis=1) * np.linalg.norm(genres[pair_items], axis=1)
    genre_match = np.einsum("pg,pg->p", user_genres[pair_users], genres[pair_items]) / np.maximum(norms, 1e-12)
    judgments = Judgments(
        name=data.name,
        query_names=tuple(f"user {user + 1}" for user in queries),
        titles=np.array(data.titles, dtype=object),
        query_features=query_features[queries].astype(np.float32),
        document_features=document_features.astype(np.float32),
        pair_features=genre_match[:, None].astype(np.float32),
        feature_names=(
            *(f"factor {k}" for k in range(item_factors.shape[1])),
            "bias",
            "popularity",
            "mean rating",
            "genre match",
        ),
        query_feature_names=(
            *(f"user factor {k}" for k in range(user_factors.shape[1])),
            "user bias",
            "user mean rating",
            "user activity",
        ),
        offsets=offsets,
        documents=pair_items.astype(np.int64),
        relevance=data.ratings[order].astype(np.float64),
        popularity=popularity,
        pointwise=model.predict(pair_users, pair_items),
        test=_test_queries(len(queries)),
        relevant=MOVIELENS_RELEVANT,
        relevance_range=(low, high),
    )
    return _freeze(judgments)


def _header(path: Path) -> list[str]:
    """The column names of a table that :func:`read_table` has accepted (CSV header, first JSON line's keys)."""
    text = path.read_bytes().decode("utf-8-sig")
    if path.suffix == ".csv":
        return next(csv.reader(text.splitlines()))
    first = next(line for line in text.split("\n") if line.strip())
    try:
        return list(parse_json(first))
    except JSONProblem:  # read_table has already refused such a file
        return []


def _number(value: str, path: Path, what: str, row: int, column: str) -> float:
    """``value`` as a finite float, or a :class:`DataFileError` naming the file, row and column."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise DataFileError(f"{what} {str(path)!r}: row {row} has {column} {value!r}; expected a finite number.")
    return number


@file_cache(maxsize=4)
def file_judgments(judgments: str, features: str) -> Judgments:
    """A user's own judgments and per-document features, LETOR-style, checked.

    Args:
        judgments: path of a ``.csv``/``.jsonl`` file with the columns ``query``, ``document`` and
            ``relevance`` (a number from 0 to 30; 2**relevance - 1 is the gain), one row per
            judged pair.
        features: path of a ``.csv``/``.jsonl`` file with a ``document`` column, an optional
            ``title`` column (shown in text), and one or more numeric feature columns; one row
            per document. Features are standardised over the documents and clipped to +-5.

    Returns:
        The :class:`Judgments`. ``popular`` ranks by the number of training queries that judged the
        document relevant (relevance >= 1); ``pointwise`` by a ridge regression of the relevance on
        the features, fitted to the training queries' judgments.

    Raises:
        DataFileError: a file is missing, lacks a column, has a bad value or a repeated key (the
            file and row are named), a judged document has no features, or no feature column.
    """
    features_path, judgments_path = Path(features), Path(judgments)
    read_table(features_path, ["document"])  # checks the file before its header is read
    header = _header(features_path)
    columns = [column for column in header if column not in ("document", "title")]
    if not columns:
        raise DataFileError(
            f"Features file {str(features_path)!r} has no feature column; besides 'document' (and an optional "
            "'title') it needs one or more numeric columns."
        )
    has_title = "title" in header
    rows = read_table(features_path, ["document", *columns, *(["title"] if has_title else [])])
    position: dict[str, int] = {}
    values = np.zeros((len(rows), len(columns)))
    titles = []
    for number, row in enumerate(rows, start=1):
        document = row["document"].strip()
        if document in position:
            raise DataFileError(
                f"Features file {str(features_path)!r}: row {number} repeats document {document!r}; "
                "give each document one row."
            )
        position[document] = len(position)
        for k, column in enumerate(columns):
            values[number - 1, k] = _number(row[column], features_path, "Features file", number, column)
        titles.append((row["title"].strip() if has_title else "") or document)

    pairs: dict[tuple[str, str], int] = {}
    query_of: list[str] = []
    document_of: list[int] = []
    relevance: list[float] = []
    for number, row in enumerate(read_table(judgments_path, JUDGMENT_COLUMNS), start=1):
        query, document = row["query"].strip(), row["document"].strip()
        value = _number(row["relevance"], judgments_path, "Judgments file", number, "relevance")
        if not 0.0 <= value <= MAX_RELEVANCE:
            raise DataFileError(
                f"Judgments file {str(judgments_path)!r}: row {number} has relevance {row['relevance']!r}; "
                f"expected a number from 0 to {MAX_RELEVANCE:g} (graded relevance, e.g. 0-4 as in LETOR)."
            )
        if document not in position:
            raise DataFileError(
                f"Judgments file {str(judgments_path)!r}: row {number} judges document {document!r}, which has no "
                f"row in the features file {str(features_path)!r}; add its features or drop the judgment."
            )
        if (query, document) in pairs:
            raise DataFileError(
                f"Judgments file {str(judgments_path)!r}: row {number} judges query {query!r} and document "
                f"{document!r} again (first on row {pairs[query, document]}); keep one judgment per pair."
            )
        pairs[query, document] = number
        query_of.append(query)
        document_of.append(position[document])
        relevance.append(value)

    names, query_index = np.unique(np.array(query_of), return_inverse=True)
    order = np.argsort(query_index, kind="stable")
    counts = np.bincount(query_index, minlength=len(names))
    test = _test_queries(len(names))
    documents = np.array(document_of, dtype=np.int64)[order]
    labels = np.array(relevance)[order]
    pair_query = query_index[order]

    spread = values.std(axis=0)
    standard = np.clip((values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0), -FACTOR_BOUND, FACTOR_BOUND)
    training = ~test[pair_query]
    relevant = (labels >= FILE_RELEVANT) & training
    popularity = np.bincount(documents[relevant], minlength=len(titles)).astype(np.float64)
    design = np.column_stack([standard[documents], np.ones(len(documents))])
    weights = np.linalg.solve(
        design[training].T @ design[training] + 1e-3 * np.eye(design.shape[1]),
        design[training].T @ labels[training],
    )
    judged = Judgments(
        name=f"judgments file {judgments!r}",
        query_names=tuple(str(name) for name in names),
        titles=np.array(titles, dtype=object),
        query_features=np.zeros((len(names), 0), dtype=np.float32),
        document_features=standard.astype(np.float32),
        pair_features=np.zeros((len(documents), 0), dtype=np.float32),
        feature_names=tuple(columns),
        query_feature_names=(),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        documents=documents,
        relevance=labels,
        popularity=popularity,
        pointwise=design @ weights,
        test=test,
        relevant=FILE_RELEVANT,
        relevance_range=(float(labels.min()), float(labels.max())),
    )
    return _freeze(judged)
