"""The fitted user-model table of the recommendation task: the catalog and the population, from ratings.

:func:`build_simulator` fits it from MovieLens (or a user's catalog and ratings files) through
:mod:`nlp_envs.data.movielens`; the task (:mod:`nlp_envs.recommendation`) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlp_envs.data.files import file_cache
from nlp_envs.data.movielens import fit_factors, load_ratings

BAYES_PRIOR = 10.0  # ratings' worth of the global mean in an item's average rating
FACTOR_BOUND = 5.0  # item factors in observations are clipped to this many population stds


@dataclass(frozen=True)
class Simulator:
    """What the user model knows of the catalog and the user population, fitted from the ratings.

    Attributes:
        titles: ``"Title (year)"`` per catalog item (the items rated at least ``min_item_ratings``
            times, in a fixed shuffled order), an object array.
        labels: ``"Title (year) [Genre|Genre]"`` per catalog item, for text.
        genre_names: the genre vocabulary.
        genres: ``(items, genres)`` 0/1 floats.
        appeal: ``(items,)`` in ``(0, 1)``: percentile of the item's number of ratings (popularity).
        quality: ``(items,)`` in ``(0, 1)``: percentile of its average rating (Bayesian average
            with ``BAYES_PRIOR`` ratings at the global mean).
        mean_rating: ``(items,)``: that average, on the rating scale.
        item_factors: ``(items, dim)``; user_factors: ``(users, dim)``: the fitted factors, both
            divided by ``sqrt(std of p_u . q_i)`` so that their dot product, the *affinity*, has
            unit standard deviation over users and items.
        factor_scale: ``(dim,)``: the population standard deviation of the scaled user factors.
        features: ``(items, 3 + genres + dim)`` float32, what the agent sees of an item: appeal,
            quality, release year (0 = oldest, 1 = newest; 0.5 unknown), genres, and the item's
            factors in units of ``factor_scale`` (clipped to +-5).
        heldout_rmse: the factorisation's RMSE on the held-out 10% of ratings.
        item_mean_rmse: the item-mean baseline's RMSE on the same ratings.
    """

    titles: np.ndarray
    labels: tuple[str, ...]
    genre_names: tuple[str, ...]
    genres: np.ndarray
    appeal: np.ndarray
    quality: np.ndarray
    mean_rating: np.ndarray
    item_factors: np.ndarray
    user_factors: np.ndarray
    factor_scale: np.ndarray
    features: np.ndarray
    heldout_rmse: float
    item_mean_rmse: float

    @property
    def num_items(self) -> int:
        """Items in the env's catalog."""
        return len(self.titles)

    @property
    def dim(self) -> int:
        """Latent factors per user and item."""
        return int(self.item_factors.shape[1])


def _percentile(values: np.ndarray) -> np.ndarray:
    """Mid-rank percentiles in ``(0, 1)``; ties share their average rank."""
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    up_to = np.searchsorted(ordered, values, side="right")
    return (below + up_to) / (2.0 * len(values))


@file_cache(maxsize=4)
def build_simulator(catalog: str = "ml-100k", ratings: str | None = None, min_item_ratings: int = 20) -> Simulator:
    """Fit the user model from the ratings (cached per process; about 0.5 s for MovieLens-100k).

    Args:
        catalog: ``"ml-100k"`` or the path of a catalog file (see :func:`nlp_envs.data.movielens.load_ratings`).
        ratings: with a catalog path, the path of its ratings file.
        min_item_ratings: items rated fewer times are left out of the env's catalog.

    Returns:
        The :class:`Simulator` (read-only arrays, shared by every env built from the same data).
    """
    data = load_ratings(catalog, ratings)
    model = fit_factors(catalog, ratings)
    counts = np.bincount(data.items, minlength=data.num_items)
    kept = np.flatnonzero(counts >= min_item_ratings)
    if len(kept) < 2:
        raise ValueError(
            f"{data.name}: only {len(kept)} items have at least min_item_ratings={min_item_ratings} ratings; "
            "expected 2 or more. Lower min_item_ratings or give more ratings."
        )
    # A fixed shuffle, so that the catalog strata that candidates are drawn from carry no order.
    kept = kept[np.random.default_rng(7).permutation(len(kept))]
    sums = np.bincount(data.items, weights=data.ratings, minlength=data.num_items)
    global_mean = float(data.ratings.mean())
    mean_rating = ((sums + BAYES_PRIOR * global_mean) / (counts + BAYES_PRIOR))[kept]
    appeal = _percentile(np.log(counts[kept]))
    quality = _percentile(mean_rating)
    genres = data.genres[kept].astype(np.float64)
    affinity_std = float(np.std(model.user_factors @ model.item_factors[kept].T)) + 1e-12
    item_factors = model.item_factors[kept] / np.sqrt(affinity_std)
    user_factors = model.user_factors / np.sqrt(affinity_std)
    factor_scale = user_factors.std(axis=0) + 1e-9
    years = data.years[kept]
    known = np.isfinite(years)
    first, last = (years[known].min(), years[known].max()) if known.any() else (0.0, 1.0)
    year_feature = np.where(known, (np.nan_to_num(years) - first) / max(last - first, 1.0), 0.5)
    scaled_factors = np.clip(item_factors / factor_scale, -FACTOR_BOUND, FACTOR_BOUND)
    features = np.concatenate(
        [appeal[:, None], quality[:, None], year_feature[:, None], genres, scaled_factors], axis=1
    ).astype(np.float32)
    titles = np.array([data.titles[item] for item in kept], dtype=object)
    labels = tuple(
        f"{title} [{'|'.join(name for name, has in zip(data.genre_names, row, strict=True) if has)}]"
        for title, row in zip(titles, genres, strict=True)
    )
    simulator = Simulator(
        titles=titles,
        labels=labels,
        genre_names=data.genre_names,
        genres=genres,
        appeal=appeal,
        quality=quality,
        mean_rating=mean_rating,
        item_factors=item_factors,
        user_factors=user_factors,
        factor_scale=factor_scale,
        features=features,
        heldout_rmse=model.heldout_rmse,
        item_mean_rmse=model.item_mean_rmse,
    )
    for array in (titles, genres, appeal, quality, mean_rating, item_factors, user_factors, factor_scale, features):
        array.flags.writeable = False
    return simulator
