"""BasicVariantGenerator: Ray Tune's default search algorithm, to pass explicitly.

Ray scripts pass it as ``TuneConfig(search_alg=BasicVariantGenerator(...))``
to run known configs first (``points_to_evaluate``), to cap the trials
running at once (``max_concurrent``), to keep random values constant across
a grid (``constant_grid_search``) or to seed the sampling
(``random_state``). In fastasha it is not a searcher that suggests configs:
the Tuner reads its settings and samples the param space itself, exactly as
without a ``search_alg`` (see :class:`~fastasha.search.VariantGenerator`),
so a sweep with one restores like any other.
"""

from __future__ import annotations

import numbers
from typing import Any

from .._validation import check_bool, check_int
from .variant_generator import check_points

__all__ = ["BasicVariantGenerator"]


class BasicVariantGenerator:
    """Ray Tune's ``BasicVariantGenerator``: sample the param space, with options.

    Parameters
    ----------
    points_to_evaluate : list of dict or None, default=None
        (Partial) configs to run first. Each replaces one of the
        ``num_samples`` repetitions of the space: its values take the place
        of the domains and grid searches at the same paths, and what it
        leaves open is drawn, or crossed for grid searches. With
        ``param_space={"a": grid_search([1, 2]), "b": randint(0, 3)}``,
        ``num_samples=4`` and the points ``{"a": 2, "b": 2}``, ``{"a": 1}``
        and ``{"b": 2}``, the sweep runs 6 trials: ``(2, 2)``, ``(1, b)``,
        ``(1, 2)``, ``(2, 2)``, then one repetition of the whole space. A
        path the space lacks is an error; a value outside its domain runs
        with a warning.
    max_concurrent : int, default=0
        Most trials running at once; 0 for no limit of its own. Combined
        with ``TuneConfig(max_concurrent_trials=...)``, the smaller applies.
    constant_grid_search : bool, default=False
        Draw the random values of a repetition once, and keep them for
        every grid combination of that repetition.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None, default=None
        Seed of the sampling, as ``TuneConfig(seed=...)`` (give one or the
        other, or the same). A numpy generator is asked for one seed when
        the sweep starts. ``None``: ``TuneConfig.seed``, or a seed drawn
        from numpy's global random state (``np.random.seed(...)`` before
        ``fit()`` makes the sweep reproducible, as in Ray Tune).

    Raises
    ------
    TypeError
        For arguments of the wrong type.
    ValueError
        For a negative ``max_concurrent`` or seed.

    Notes
    -----
    Where fastasha differs: ``sample_from`` functions are called for each
    grid combination even with ``constant_grid_search`` (they may read grid
    values; Ray calls those it can once, first). Wrapping it in a
    ``ConcurrencyLimiter`` is refused: give ``max_concurrent`` instead.

    Examples
    --------
    >>> from fastasha import tune
    >>> from fastasha.search import BasicVariantGenerator
    >>> config = tune.TuneConfig(num_samples=4, search_alg=BasicVariantGenerator(
    ...     points_to_evaluate=[{"lr": 0.01}], max_concurrent=2, random_state=7))
    """

    def __init__(self, points_to_evaluate: list | None = None, max_concurrent: int = 0,
                 constant_grid_search: bool = False, random_state: Any = None) -> None:
        self.points_to_evaluate = check_points(points_to_evaluate)
        self.max_concurrent = check_int("max_concurrent", max_concurrent, minimum=0,
                                        hint="; 0 means no limit")
        self.constant_grid_search = check_bool("constant_grid_search", constant_grid_search)
        if random_state is not None and not isinstance(random_state, numbers.Integral) and \
                not hasattr(random_state, "integers") and not hasattr(random_state, "randint"):
            raise TypeError(f"random_state must be an int seed, a numpy Generator or "
                            f"RandomState, or None, got {random_state!r}")
        if isinstance(random_state, numbers.Integral):
            check_int("random_state", random_state, minimum=0,
                      hint="; pass a non-negative int seed")
        self.random_state = random_state

    def seed(self) -> int | None:
        """The seed of the sampling: ``random_state`` itself, or one drawn from it; None without."""
        state = self.random_state
        if state is None or isinstance(state, numbers.Integral):
            return None if state is None else int(state)
        if hasattr(state, "integers"):         # numpy Generator
            return int(state.integers(2**31))
        return int(state.randint(2**31))       # numpy RandomState

    def __repr__(self) -> str:
        return (f"BasicVariantGenerator(points_to_evaluate={len(self.points_to_evaluate)} "
                f"points, max_concurrent={self.max_concurrent}, "
                f"constant_grid_search={self.constant_grid_search})")
