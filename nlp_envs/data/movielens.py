"""MovieLens-100k (or a user's own catalog and ratings), read in place, and a matrix factorisation of it.

The built-in data is MovieLens-100k as shipped in ``recbole==1.2.1`` (``dataset_example/ml-100k/``):
it is read where pip put it and never copied (the MovieLens terms forbid redistribution). A user
can give their own pair of files instead, in the same columns (see :func:`load_ratings`).

:func:`fit_factors` fits the classic biased matrix factorisation
``rating(u, i) ~ mean + b_u + b_i + p_u . q_i`` by alternating least squares in plain numpy on 90%
of the ratings (a fixed split) and reports its RMSE on the other 10% next to the item-mean
baseline's. On MovieLens-100k the fit takes a fraction of a second and is cached per process.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp_envs.data import MOVIELENS_100K
from nlp_envs.data.files import DataFileError, file_cache, read_table

CATALOG_COLUMNS = ("item_id", "title", "year", "genres")
RATINGS_COLUMNS = ("user_id", "item_id", "rating")
HELD_OUT_FRACTION = 0.1
_DENSE_LIMIT = 30_000_000  # users x items up to which the normal equations use dense matrix products


@dataclass(frozen=True)
class RatingData:
    """A catalog of items and the ratings users gave them, as arrays.

    Attributes:
        name: ``"ml-100k"`` or the pair of user paths.
        titles: one display title per item, e.g. ``"Toy Story (1995)"``.
        years: release year per item, ``nan`` where unknown, shape ``(items,)``.
        genre_names: the genre vocabulary, sorted.
        genres: ``(items, genres)`` booleans: which genres each item has.
        users: user index of each rating, shape ``(ratings,)``.
        items: item index of each rating, shape ``(ratings,)``.
        ratings: the rating values, shape ``(ratings,)``.
    """

    name: str
    titles: tuple[str, ...]
    years: np.ndarray
    genre_names: tuple[str, ...]
    genres: np.ndarray
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray

    @property
    def num_users(self) -> int:
        """The number of distinct users who rated something."""
        return int(self.users.max()) + 1

    @property
    def num_items(self) -> int:
        """The number of items in the catalog (rated or not)."""
        return len(self.titles)


@dataclass(frozen=True)
class FactorModel:
    """A fitted biased matrix factorisation and how well it predicts held-out ratings.

    Attributes:
        mean: the global mean rating of the training ratings.
        user_bias: ``(users,)``; user_factors: ``(users, dim)``.
        item_bias: ``(items,)``; item_factors: ``(items, dim)``; items without training ratings
            have zero bias and factors.
        heldout_rmse: RMSE of the clipped predictions on the held-out 10% of the ratings.
        item_mean_rmse: RMSE of the baseline that predicts each item's training mean there.
    """

    mean: float
    user_bias: np.ndarray
    user_factors: np.ndarray
    item_bias: np.ndarray
    item_factors: np.ndarray
    heldout_rmse: float
    item_mean_rmse: float

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for pairs ``(users[k], items[k])``, unclipped."""
        dot = np.einsum("nd,nd->n", self.user_factors[users], self.item_factors[items])
        return self.mean + self.user_bias[users] + self.item_bias[items] + dot


@file_cache(maxsize=4)
def load_ratings(catalog: str = "ml-100k", ratings: str | None = None) -> RatingData:
    """Load MovieLens-100k or a user's catalog and ratings files.

    Args:
        catalog: ``"ml-100k"`` (the default) or the path of a ``.csv``/``.jsonl`` catalog with the
            columns ``item_id``, ``title``, ``year`` (may be empty) and ``genres`` (separated by ``|``).
        ratings: with a catalog path, the path of a ``.csv``/``.jsonl`` file with the columns
            ``user_id``, ``item_id`` and ``rating`` (a number; repeated pairs are averaged).

    Raises:
        MissingDataError: ``"ml-100k"`` without ``recbole`` installed (the message has the pip command).
        DataFileError: a user file is missing, lacks a column, or has a bad value (the row is named).
        ValueError: a catalog path without ``ratings``, or ``ratings`` with ``"ml-100k"``.
    """
    check_sources(catalog, ratings)
    if ratings is None:  # the built-in catalog: check_sources refused a catalog file without ratings
        return _load_movielens_100k()
    return _load_user_files(Path(catalog), Path(ratings))


def check_sources(catalog: str, ratings: str | None, env: str = "") -> None:
    """Refuse ``ratings`` with the built-in catalog, and a catalog file without ``ratings``, before any loading.

    Args:
        catalog: ``"ml-100k"`` or the path of a catalog file.
        ratings: the path of its ratings file, or None.
        env: the env id the message starts with (none when empty).

    Raises:
        ValueError: the pair does not go together; the message says how to fix it.
    """
    where = f"{env}: " if env else ""
    if catalog == MOVIELENS_100K.name and ratings is not None:
        raise ValueError(
            f"{where}ratings={ratings!r} was given with catalog='ml-100k'; the built-in catalog has its own "
            "ratings. Pass catalog=PATH together with ratings=PATH to use your own data."
        )
    if catalog != MOVIELENS_100K.name and ratings is None:
        raise ValueError(
            f"{where}catalog={catalog!r} is not the built-in 'ml-100k', so it is taken as the path of your catalog "
            f"file, and ratings=PATH is needed too: a .csv or .jsonl file with the columns {RATINGS_COLUMNS}; pass "
            "catalog='ml-100k', or both catalog=PATH and ratings=PATH."
        )


def _load_movielens_100k() -> RatingData:
    folder = MOVIELENS_100K.location() / "dataset_example" / "ml-100k"
    inter = np.loadtxt(folder / "ml-100k.inter", skiprows=1, usecols=(0, 1, 2), delimiter="\t", dtype=np.float64)
    item_ids, titles, years, genre_lists = [], [], [], []
    with open(folder / "ml-100k.item", encoding="utf-8") as file:
        next(file)
        for line in file:
            item_id, title, year, classes = line.rstrip("\n").split("\t")
            item_ids.append(int(item_id))
            titles.append(f"{title} ({year})" if year.isdigit() else title)
            years.append(float(year) if year.isdigit() else math.nan)
            genre_lists.append([genre for genre in classes.split() if genre != "unknown"])
    users, items, values = inter[:, 0], inter[:, 1].astype(np.int64), inter[:, 2]
    return _assemble("ml-100k", np.array(item_ids), titles, years, genre_lists, users, items, values)


def _load_user_files(catalog: Path, ratings: Path) -> RatingData:
    item_rows = read_table(catalog, CATALOG_COLUMNS)
    item_ids, titles, years, genre_lists = [], [], [], []
    for number, row in enumerate(item_rows, start=1):
        year = row["year"].strip()
        try:
            years.append(float(year) if year else math.nan)
        except ValueError:
            raise DataFileError(
                f"Catalog file {str(catalog)!r}: row {number} has year {year!r}; expected a number or an empty field."
            ) from None
        item_ids.append(row["item_id"].strip())
        titles.append(row["title"].strip() or f"item {row['item_id'].strip()}")
        genre_lists.append([genre.strip() for genre in row["genres"].split("|") if genre.strip()])
    duplicates = [item for item, count in Counter(item_ids).items() if count > 1]
    if duplicates:
        duplicate = duplicates[0]
        raise DataFileError(
            f"Catalog file {str(catalog)!r}: item_id {duplicate!r} appears more than once; item ids must be unique."
        )
    rating_rows = read_table(ratings, RATINGS_COLUMNS)
    position = {item: index for index, item in enumerate(item_ids)}
    user_keys, item_index, values = [], [], []
    for number, row in enumerate(rating_rows, start=1):
        item = row["item_id"].strip()
        if item not in position:
            raise DataFileError(
                f"Ratings file {str(ratings)!r}: row {number} rates item_id {item!r}, which is not in the catalog "
                f"{str(catalog)!r}; add the item to the catalog or drop the rating."
            )
        try:
            value = float(row["rating"])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataFileError(
                f"Ratings file {str(ratings)!r}: row {number} has rating {row['rating']!r}; expected a finite number."
            )
        user_keys.append(row["user_id"].strip())
        item_index.append(position[item])
        values.append(value)
    _, users = np.unique(np.array(user_keys), return_inverse=True)
    name = f"{catalog}+{ratings}"
    return _assemble(
        name, np.arange(len(item_ids)), titles, years, genre_lists, users, np.array(item_index), np.array(values)
    )


def _assemble(
    name: str,
    item_ids: np.ndarray,
    titles: list[str],
    years: list[float],
    genre_lists: list[list[str]],
    raw_users: np.ndarray,
    raw_items: np.ndarray,
    values: np.ndarray,
) -> RatingData:
    """Index users and items densely, average repeated pairs, and build the genre matrix."""
    order = np.argsort(item_ids, kind="stable")
    index_of = order[np.minimum(np.searchsorted(item_ids, raw_items, sorter=order), len(order) - 1)]
    unknown = item_ids[index_of] != raw_items
    if unknown.any():
        raise DataFileError(f"{name}: ratings name item {raw_items[unknown][0]!r}, which is not in the catalog.")
    _, users = np.unique(raw_users, return_inverse=True)
    pairs, inverse = np.unique(users.astype(np.int64) * len(titles) + index_of, return_inverse=True)
    sums = np.bincount(inverse, weights=values.astype(np.float64))
    counts = np.bincount(inverse)
    genre_names = tuple(sorted({genre for genres in genre_lists for genre in genres}))
    column = {genre: index for index, genre in enumerate(genre_names)}
    genres = np.zeros((len(titles), len(genre_names)), dtype=bool)
    for item, item_genres in enumerate(genre_lists):
        genres[item, [column[genre] for genre in item_genres]] = True
    data = RatingData(
        name=name,
        titles=tuple(titles),
        years=np.array(years, dtype=np.float64),
        genre_names=genre_names,
        genres=genres,
        users=pairs // len(titles),
        items=pairs % len(titles),
        ratings=sums / counts,
    )
    for array in (data.years, data.genres, data.users, data.items, data.ratings):
        array.flags.writeable = False
    return data


def heldout_mask(num_ratings: int) -> np.ndarray:
    """The fixed 10% of ratings held out from fitting (the same on every machine)."""
    return np.random.default_rng(20261128).random(num_ratings) < HELD_OUT_FRACTION


@file_cache(maxsize=4)
def fit_factors(
    catalog: str = "ml-100k",
    ratings: str | None = None,
    dim: int = 8,
    regularization: float = 0.1,
    iterations: int = 8,
) -> FactorModel:
    """Fit ``rating ~ mean + b_u + b_i + p_u . q_i`` by alternating least squares on 90% of the ratings.

    Each half-iteration solves one ridge regression per user (then per item) in closed form, with
    the penalty ``regularization * (number of ratings + 1)`` (weighted-lambda ALS). Initialisation
    is seeded, so the fit is the same in every process.

    Args:
        catalog: as for :func:`load_ratings`.
        ratings: as for :func:`load_ratings`.
        dim: the number of latent factors.
        regularization: the ridge penalty per rating.
        iterations: the number of alternations.

    Returns:
        A :class:`FactorModel` with its held-out RMSE and the item-mean baseline's.
    """
    data = load_ratings(catalog, ratings)
    held_out = heldout_mask(len(data.ratings))
    train = ~held_out
    if train.sum() < 2 or held_out.sum() < 1:
        raise ValueError(
            f"{data.name}: {len(data.ratings)} ratings are too few to fit and test factors; give at least 20."
        )
    users, items, values = data.users[train], data.items[train], data.ratings[train]
    num_users, num_items = data.num_users, data.num_items
    mean = float(values.mean())
    rng = np.random.default_rng(0)
    user_factors = rng.normal(0.0, 0.1, (num_users, dim))
    item_factors = rng.normal(0.0, 0.1, (num_items, dim))
    user_bias, item_bias = np.zeros(num_users), np.zeros(num_items)
    for _ in range(iterations):
        user_factors, user_bias = _ridge_rows(
            users, items, values - mean - item_bias[items], item_factors, num_users, regularization
        )
        item_factors, item_bias = _ridge_rows(
            items, users, values - mean - user_bias[users], user_factors, num_items, regularization
        )
    model = FactorModel(mean, user_bias, user_factors, item_bias, item_factors, math.nan, math.nan)
    truth = data.ratings[held_out]
    low, high = float(data.ratings.min()), float(data.ratings.max())
    predicted = np.clip(model.predict(data.users[held_out], data.items[held_out]), low, high)
    counts = np.bincount(items, minlength=num_items)
    item_means = np.where(counts > 0, np.bincount(items, values, minlength=num_items) / np.maximum(counts, 1), mean)
    baseline = item_means[data.items[held_out]]
    model = FactorModel(
        mean,
        user_bias,
        user_factors,
        item_bias,
        item_factors,
        heldout_rmse=float(np.sqrt(np.mean((predicted - truth) ** 2))),
        item_mean_rmse=float(np.sqrt(np.mean((baseline - truth) ** 2))),
    )
    for array in (user_bias, user_factors, item_bias, item_factors):
        array.flags.writeable = False
    return model


def _ridge_rows(
    rows: np.ndarray, cols: np.ndarray, targets: np.ndarray, other: np.ndarray, num_rows: int, regularization: float
) -> tuple[np.ndarray, np.ndarray]:
    """Solve, for every row r, ``min sum (target - x_c . w - b)^2 + reg * (n_r + 1) * |(w, b)|^2``.

    Returns:
        ``(weights (num_rows, dim), biases (num_rows,))``; rows without ratings get zeros.
    """
    dim = other.shape[1]
    features = np.concatenate([other, np.ones((len(other), 1))], axis=1)
    outer = (features[:, :, None] * features[:, None, :]).reshape(len(features), -1)
    counts = np.bincount(rows, minlength=num_rows).astype(np.float64)
    if num_rows * len(other) <= _DENSE_LIMIT:
        # Dense products in float32 are ~10x faster than scattering; the solve stays float64.
        dense = np.zeros((2, num_rows, len(other)), dtype=np.float32)
        dense[0, rows, cols] = 1.0
        dense[1, rows, cols] = targets
        gram = (dense[0] @ outer.astype(np.float32)).astype(np.float64)
        right = (dense[1] @ features.astype(np.float32)).astype(np.float64)
    else:
        gathered = outer[cols]
        gram = np.stack([np.bincount(rows, gathered[:, k], minlength=num_rows) for k in range(outer.shape[1])], 1)
        right = np.stack(
            [np.bincount(rows, features[cols, k] * targets, minlength=num_rows) for k in range(dim + 1)], 1
        )
    gram = gram.reshape(num_rows, dim + 1, dim + 1)
    gram += (regularization * (counts + 1.0))[:, None, None] * np.eye(dim + 1)
    solution = np.linalg.solve(gram, right[:, :, None])[:, :, 0]
    return solution[:, :dim], solution[:, dim]
