"""Tests of fastasha.search: domains, variant generation and the JSON helpers."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastasha.search import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    VariantGenerator,
    choice,
    config_to_json,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    space_from_json,
    space_to_json,
    uniform,
)

N = 4000  # samples per distribution check; tolerances below are > 5 standard errors


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def is_multiple(value: float, q: float) -> bool:
    return math.isclose(value / q, round(value / q), rel_tol=0, abs_tol=1e-9)


def configs(space: dict, num_samples: int = 1, seed: int = 0) -> list[dict]:
    return list(VariantGenerator(space, num_samples=num_samples, seed=seed))


# ============================================================== primitives: bounds and types


def test_uniform_bounds_lower_inclusive_upper_exclusive():
    values = uniform(-5, -1).sample(rng(), N)
    assert len(values) == N
    assert all(type(v) is float for v in values)
    assert all(-5 <= v < -1 for v in values)
    assert min(values) < -4.99 and max(values) > -1.01


def test_uniform_upper_never_reached_even_when_rounding_would():
    # The interval is one ulp wide: lower + u * (upper - lower) rounds up to upper
    # for half of the draws, so this checks that upper is really excluded.
    upper = float(np.nextafter(1.0, 2.0))
    assert set(uniform(1.0, upper).sample(rng(), 200)) == {1.0}
    assert set(loguniform(1.0, upper).sample(rng(), 200)) == {1.0}


def test_uniform_is_flat():
    values = np.array(uniform(0, 10).sample(rng(), N))
    counts = np.histogram(values, bins=5, range=(0, 10))[0] / N
    assert np.all(np.abs(counts - 0.2) < 0.04)


def test_quniform_values_are_multiples_and_reach_both_bounds():
    values = quniform(3.2, 5.4, 0.2).sample(rng(), N)
    assert all(type(v) is float for v in values)
    assert all(is_multiple(v, 0.2) for v in values)
    assert all(3.2 - 1e-9 <= v <= 5.4 + 1e-9 for v in values)
    rounded = {round(v / 0.2) for v in values}
    assert rounded == set(range(16, 28))  # 3.2 .. 5.4, both bounds included


def test_quniform_bounds_come_out_half_as_often():
    # round(x / q) * q with x uniform: the end points have half-width buckets.
    counts = Counter(quniform(0, 1, 0.25).sample(rng(), N))
    assert set(counts) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert abs(counts[0.0] / N - 0.125) < 0.03
    assert abs(counts[0.5] / N - 0.25) < 0.035
    assert abs(counts[1.0] / N - 0.125) < 0.03


def test_loguniform_bounds_and_log_scale():
    values = loguniform(1e-4, 1).sample(rng(), N)
    assert all(type(v) is float for v in values)
    assert all(1e-4 <= v < 1 for v in values)
    below = sum(v < 1e-2 for v in values) / N
    assert abs(below - 0.5) < 0.05
    # each decade about equally likely
    decades = Counter(math.floor(math.log10(v)) for v in values)
    assert set(decades) == {-4, -3, -2, -1}
    assert all(abs(c / N - 0.25) < 0.04 for c in decades.values())
    # whereas uniform puts ~1% of its mass below 1e-2
    assert sum(v < 1e-2 for v in uniform(1e-4, 1).sample(rng(), N)) / N < 0.03


@pytest.mark.parametrize("base", [10, 2, math.e])
def test_loguniform_base_does_not_change_distribution(base):
    values = loguniform(1, 1000, base=base).sample(rng(), N)
    assert abs(sum(v < 10 for v in values) / N - 1 / 3) < 0.05


def test_qloguniform_multiples_within_bounds():
    values = qloguniform(1e-4, 1e-1, 5e-5).sample(rng(), N)
    assert all(is_multiple(v, 5e-5) for v in values)
    assert all(1e-4 - 1e-12 <= v <= 1e-1 + 1e-12 for v in values)
    assert abs(sum(v < 1e-2 for v in values) / N - 2 / 3) < 0.05


def test_qloguniform_upper_is_inclusive():
    values = qloguniform(1, 3, 1).sample(rng(), N)
    assert set(values) == {1.0, 2.0, 3.0}


def test_randn_mean_and_sd():
    values = np.array(randn(10, 2).sample(rng(), N))
    assert abs(values.mean() - 10) < 0.15
    assert abs(values.std() - 2) < 0.15
    assert all(type(v) is float for v in randn().sample(rng(), 10))
    default = np.array(randn().sample(rng(1), N))
    assert abs(default.mean()) < 0.1 and abs(default.std() - 1) < 0.1


def test_qrandn_multiples():
    values = qrandn(10, 2, 0.2).sample(rng(), N)
    assert all(type(v) is float for v in values)
    assert all(is_multiple(v, 0.2) for v in values)
    assert abs(np.mean(values) - 10) < 0.15


def test_randint_upper_exclusive_and_python_ints():
    values = randint(-2, 3).sample(rng(), N)
    assert all(type(v) is int for v in values)
    assert set(values) == {-2, -1, 0, 1, 2}
    counts = Counter(values)
    assert all(abs(c / N - 0.2) < 0.04 for c in counts.values())


@pytest.mark.parametrize(
    ("lower", "upper", "q", "expected"),
    [
        (1, 10, 1, set(range(1, 11))),  # q=1 (the default): upper inclusive
        (0, 10, 5, {0, 5, 10}),
        (0, 10, 2, {0, 2, 4, 6, 8, 10}),
        (1, 10, 5, {5, 10}),  # only the multiples of q between the bounds
        (-7, 7, 3, {-6, -3, 0, 3, 6}),
    ],
)
def test_qrandint_upper_inclusive_multiples_of_q(lower, upper, q, expected):
    values = qrandint(lower, upper, q).sample(rng(), N)
    assert all(type(v) is int for v in values)
    assert set(values) == expected
    counts = Counter(values)
    share = 1 / len(expected)
    assert all(abs(c / N - share) < 0.05 for c in counts.values())


def test_qrandint_default_q_is_one():
    assert qrandint(1, 3) == Integer(1, 3, q=1)
    assert set(qrandint(1, 3).sample(rng(), 500)) == {1, 2, 3}


def test_lograndint_upper_exclusive_and_log_scale():
    values = lograndint(1, 1000).sample(rng(), N)
    assert all(type(v) is int for v in values)
    assert min(values) == 1 and max(values) <= 999
    assert abs(sum(v < 10 for v in values) / N - 1 / 3) < 0.05
    assert set(lograndint(1, 4).sample(rng(), 500)) == {1, 2, 3}


def test_qlograndint_upper_inclusive_and_log_scale():
    assert set(qlograndint(1, 4, 1).sample(rng(), N)) == {1, 2, 3, 4}
    values = qlograndint(10, 10000, 10).sample(rng(), N)
    assert all(type(v) is int and v % 10 == 0 for v in values)
    assert 10 <= min(values) and max(values) <= 10000
    assert 100 in qlograndint(10, 100, 10).sample(rng(), N)  # upper bound reached
    assert abs(sum(v < 100 for v in values) / N - 1 / 3) < 0.05


def test_choice_returns_the_original_objects():
    marker = object()
    nested = [1, 2]
    values = choice([marker, "a", None, 3, nested]).sample(rng(), 500)
    assert any(v is marker for v in values)
    assert any(v is nested for v in values)
    assert {type(v) for v in values} == {object, str, type(None), int, list}
    counts = Counter(map(id, values))
    assert len(counts) == 5


def test_choice_of_numpy_array_gives_python_types():
    values = choice(np.array([1.5, 2.5])).sample(rng(), 50)
    assert {type(v) for v in values} == {float}
    assert choice(range(3)) == Categorical([0, 1, 2])
    assert choice((1, 2)).categories == (1, 2)


def test_choice_is_uniform():
    counts = Counter(choice(["a", "b", "c", "d"]).sample(rng(), N))
    assert all(abs(c / N - 0.25) < 0.04 for c in counts.values())


def test_sample_is_vectorised_and_handles_zero():
    for domain in (uniform(0, 1), qrandint(0, 9, 3), choice(["a", "b"]),
                   randn(), lograndint(1, 9)):
        assert domain.sample(rng(), 0) == []
        assert len(domain.sample(rng(), 7)) == 7


def test_function_sample_calls_func_with_spec():
    seen = []
    domain = sample_from(lambda spec: seen.append(dict(spec.config)) or spec.config["x"] + 1)
    assert domain.draw(rng(), 2, config={"x": 1}) == [2, 2]
    assert seen == [{"x": 1}, {"x": 1}]
    assert sample_from(lambda: 5).sample(rng(), 3) == [5, 5, 5]
    assert isinstance(domain, Function) and domain.pass_spec
    assert not sample_from(lambda: 5).pass_spec
    assert sample_from(abs).pass_spec  # builtins: passed the spec


def test_domains_are_frozen_and_comparable():
    d = uniform(0, 1)
    with pytest.raises(AttributeError):
        d.lower = 3  # type: ignore[misc]
    assert d == Float(0.0, 1.0, "uniform")
    assert hash(d) == hash(Float(0, 1))
    assert randint(0, 5) != qrandint(0, 5)  # upper exclusive vs inclusive
    assert isinstance(d, Domain) and isinstance(choice([1]), Domain)


def test_base_domain_draw_is_abstract():
    with pytest.raises(NotImplementedError, match="does not implement draw"):
        Domain().sample(rng(), 1)
    with pytest.raises(NotImplementedError, match="does not implement draw"):
        Domain().sample()


# ============================================================== primitives: seeding


@pytest.mark.parametrize(
    "domain",
    [uniform(0, 1), quniform(0, 1, 0.1), loguniform(1e-3, 1), randn(), qrandn(0, 1, 0.5),
     randint(0, 100), qrandint(0, 100, 5), lograndint(1, 100), qlograndint(1, 100, 2),
     choice(list(range(20)))],
    ids=repr,
)
def test_same_seed_same_values_different_seed_different(domain):
    assert domain.sample(rng(7), 50) == domain.sample(rng(7), 50)
    assert domain.sample(rng(7), 50) != domain.sample(rng(8), 50)


def test_global_numpy_rng_untouched():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    configs({"a": uniform(0, 1), "b": choice([1, 2]), "c": grid_search([1, 2])}, 3, seed=1)
    uniform(0, 1).sample(rng(), 10)
    assert np.array_equal(np.random.get_state()[1], before)


# ============================================================== primitives: property tests


@settings(max_examples=60, deadline=None)
@given(
    lower=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-6, 1e6, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_property_uniform_within_bounds(lower, width, seed):
    upper = lower + width
    if not lower < upper:
        return
    assert all(lower <= v < upper for v in uniform(lower, upper).sample(rng(seed), 50))


@settings(max_examples=60, deadline=None)
@given(
    lower=st.integers(-10**6, 10**6),
    width=st.integers(1, 10**6),
    q=st.integers(1, 1000),
    seed=st.integers(0, 2**32),
)
def test_property_qrandint_multiples_within_inclusive_bounds(lower, width, q, seed):
    upper = lower + width
    if -(-lower // q) > upper // q:  # no multiple of q in [lower, upper]
        with pytest.raises(ValueError, match="no multiple of q"):
            qrandint(lower, upper, q)
        return
    values = qrandint(lower, upper, q).sample(rng(seed), 50)
    assert all(type(v) is int and v % q == 0 and lower <= v <= upper for v in values)


@settings(max_examples=60, deadline=None)
@given(lower=st.integers(1, 10**6), width=st.integers(1, 10**6), seed=st.integers(0, 2**32))
def test_property_lograndint_within_bounds(lower, width, seed):
    upper = lower + width
    values = lograndint(lower, upper).sample(rng(seed), 50)
    assert all(type(v) is int and lower <= v < upper for v in values)


@settings(max_examples=60, deadline=None)
@given(k_lo=st.integers(-1000, 1000), n_steps=st.integers(1, 1000),
       q=st.sampled_from([0.1, 0.2, 0.25, 0.5, 1.0, 5e-5, 3.0]), seed=st.integers(0, 2**32))
def test_property_quniform_multiples(k_lo, n_steps, q, seed):
    lower, upper = k_lo * q, (k_lo + n_steps) * q
    values = quniform(lower, upper, q).sample(rng(seed), 50)
    tol = 1e-9 * max(1.0, abs(lower), abs(upper))
    assert all(is_multiple(v, q) and lower - tol <= v <= upper + tol for v in values)


# ============================================================== primitives: errors


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: uniform(5, 1), ValueError,
         r"lower must be less than upper, got lower=5, upper=1; swap them"),
        (lambda: uniform(1, 1), ValueError, r"lower must be less than upper, got lower=1, upper=1"),
        (lambda: uniform("0", 1), TypeError, r"lower must be a real number, got '0'"),
        (lambda: uniform(0, None), TypeError, r"upper must be a real number, got None"),
        (lambda: uniform(True, 2), TypeError, r"lower must be a real number, got True"),
        (lambda: uniform(0, math.inf), ValueError, r"upper must be a finite number, got inf"),
        (lambda: uniform(math.nan, 1), ValueError, r"lower must be a finite number, got nan"),
        (lambda: quniform(0, 1, 0), ValueError, r"q must be greater than 0, got 0"),
        (lambda: quniform(0, 1, -0.5), ValueError, r"q must be greater than 0, got -0.5"),
        (lambda: quniform(0, 1, "a"), TypeError, r"q must be a real number"),
        (lambda: quniform(0.25, 1, 0.1), ValueError,
         r"lower=0.25 is not a multiple of q=0.1 .*such as lower=0.2 or lower=0.3"),
        (lambda: quniform(0, 1.05, 0.1), ValueError, r"upper=1.05 is not a multiple of q=0.1"),
        (lambda: loguniform(0, 1), ValueError,
         r"lower must be greater than 0 for a log-uniform domain, got lower=0"),
        (lambda: loguniform(-1, 1), ValueError, r"lower must be greater than 0 .* got lower=-1"),
        (lambda: loguniform(1e-3, 1e-4), ValueError, r"lower must be less than upper"),
        (lambda: loguniform(1, 10, base=1), ValueError,
         r"base must be greater than 0 and not 1, got base=1"),
        (lambda: loguniform(1, 10, base=0), ValueError, r"base must be greater than 0"),
        (lambda: loguniform(1, 10, base="e"), TypeError, r"base must be a real number"),
        (lambda: qloguniform(1e-4, 1e-1, 0), ValueError, r"q must be greater than 0"),
        (lambda: qloguniform(0.15, 1, 0.1), ValueError, r"lower=0.15 is not a multiple of q=0.1"),
        (lambda: qloguniform(0, 1, 0.1), ValueError, r"lower must be greater than 0"),
        (lambda: randn(sd=0), ValueError,
         r"sd must be greater than 0, got 0; it is the standard deviation"),
        (lambda: randn(sd=-1), ValueError, r"sd must be greater than 0, got -1"),
        (lambda: randn(mean="a"), TypeError, r"mean must be a real number"),
        (lambda: randn(mean=math.inf), ValueError, r"mean must be a finite number"),
        (lambda: qrandn(0, 1, 0), ValueError, r"q must be greater than 0"),
        (lambda: qrandn(0, 0, 1), ValueError, r"sd must be greater than 0"),
        (lambda: randint(5, 1), ValueError, r"lower must be less than upper, got lower=5, upper=1"),
        (lambda: randint(3, 3), ValueError, r"lower must be less than upper"),
        (lambda: randint(1.5, 3), TypeError, r"lower must be an integer, got 1.5"),
        (lambda: randint(0, "9"), TypeError, r"upper must be an integer, got '9'"),
        (lambda: randint(0, 2**70), ValueError, r"upper must fit in a 64-bit signed integer"),
        (lambda: qrandint(0, 10, 0), ValueError, r"q must be at least 1, got 0"),
        (lambda: qrandint(0, 10, 1.5), TypeError, r"q must be an integer, got 1.5"),
        (lambda: qrandint(1, 4, 5), ValueError,
         r"there is no multiple of q=5 between lower=1 and upper=4"),
        (lambda: lograndint(0, 10), ValueError,
         r"lower must be greater than 0 for a log-uniform domain, got lower=0"),
        (lambda: lograndint(10, 1), ValueError, r"lower must be less than upper"),
        (lambda: lograndint(1, 10, base=-1), ValueError, r"base must be greater than 0"),
        (lambda: qlograndint(1, 3, 5), ValueError, r"there is no multiple of q=5"),
        (lambda: qlograndint(1, 30, 0), ValueError, r"q must be at least 1"),
        (lambda: choice([]), ValueError, r"categories must not be empty, got \[\]"),
        (lambda: choice("abc"), TypeError,
         r"categories must be a list of options, got the string 'abc'; pass \['abc'\]"),
        (lambda: choice({"a": 1}), TypeError,
         r"categories must be a list of options, got a mapping"),
        (lambda: choice({1, 2}), TypeError, r"got a set .* sorted\(values\)"),
        (lambda: choice(5), TypeError, r"categories must be a list of options, got 5 of type int"),
        (lambda: grid_search([]), ValueError, r"values must not be empty"),
        (lambda: grid_search("ab"), TypeError, r"values must be a list of options, got the string"),
        (lambda: sample_from(5), TypeError, r"func must be callable, got 5"),
        (lambda: sample_from(lambda a, b: 0), ValueError,
         r"func must take one argument \(the spec\) or none"),
        (lambda: Float(0, 1, sampler="bogus"), ValueError,
         r"sampler must be one of 'uniform', 'loguniform', 'normal', got 'bogus'"),
        (lambda: Float(0, 1, sampler="normal"), ValueError,
         r"lower and upper must be None for sampler='normal'"),
        (lambda: Float(sampler="normal", base=2), ValueError,
         r"base is only used with sampler='loguniform'"),
        (lambda: Float(0, 1, sd=1), ValueError, r"mean and sd are only used with sampler='normal'"),
        (lambda: Float(0, 1, base=2), ValueError, r"base is only used with sampler='loguniform'"),
        (lambda: Integer(0, 5, sampler="normal"), ValueError,
         r"sampler must be one of 'uniform', 'loguniform', got 'normal'"),
        (lambda: Integer(0, 5, base=2), ValueError, r"base is only used with sampler='loguniform'"),
    ],
)
def test_domain_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (("rng", 3), TypeError, r"rng must be a numpy.random.Generator, got 'rng'"),
        ((np.random.RandomState(0), 3), TypeError, r"rng must be a numpy.random.Generator"),
        ((None, -1), ValueError, r"n must be at least 0, got -1"),
        ((None, 1.5), TypeError, r"n must be an integer, got 1.5"),
    ],
)
@pytest.mark.parametrize("domain", [uniform(0, 1), randint(0, 3), choice([1]),
                                    sample_from(lambda: 1)], ids=repr)
def test_draw_argument_errors(domain, args, exc, match):
    generator, n = args
    with pytest.raises(exc, match=match):
        domain.draw(rng() if generator is None else generator, n)


@pytest.mark.parametrize("domain", [uniform(0, 1), qrandint(0, 10, 2), choice(["a", "b"]),
                                    sample_from(lambda: 1), randn(0, 1)], ids=repr)
def test_sample_takes_ray_tunes_arguments(domain):
    # Ray Tune's Domain.sample(config=None, size=1, random_state=None): one value for size 1
    one = domain.sample()
    many = domain.sample(size=5)
    assert not isinstance(one, list) and isinstance(many, list) and len(many) == 5
    # a seed, or a RandomState, makes it reproducible
    assert domain.sample(size=4, random_state=7) == domain.sample(size=4, random_state=7)
    assert domain.sample(None, 3, np.random.RandomState(3)) == \
        domain.sample(None, 3, np.random.RandomState(3))
    # a Generator is drawn from, as by draw(); sample(rng, n) is draw(rng, n)
    assert domain.sample(random_state=rng(5), size=6) == domain.draw(rng(5), 6)
    assert domain.sample(rng(5), 6) == domain.draw(rng(5), 6)
    assert domain.sample(rng(5), 1) == domain.draw(rng(5), 1)     # a list, as draw's


def test_sample_values_keep_the_domain_semantics():
    assert set(randint(1, 3).sample(size=300, random_state=0)) == {1, 2}
    assert all(0.0 <= v < 1.0 for v in uniform(0, 1).sample(size=300, random_state=0))
    assert set(qrandint(0, 10, 5).sample(size=300, random_state=0)) == {0, 5, 10}


def test_sample_from_sees_the_config_given_to_sample():
    domain = sample_from(lambda spec: spec.config["a"] * 2)
    assert domain.sample({"a": 4}) == 8
    assert domain.sample(config={"a": 1}, size=2) == [2, 2]


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"config": "rng"}, TypeError, r"takes the config dict \(or None\) first.*got 'rng'"),
    ({"config": np.random.RandomState(0)}, TypeError, r"numpy.random.Generator as in sample"),
    ({"size": 0}, ValueError, r"size must be at least 1, got 0"),
    ({"size": 2.0}, TypeError, r"size must be an integer"),
    ({"random_state": "x"}, TypeError, r"random_state must be None, a seed"),
    ({"random_state": -1}, ValueError, r"random_state must be a seed of at least 0"),
    ({"config": np.random.default_rng(), "random_state": 1}, TypeError,
     r"sample\(rng, n\) takes no random_state"),
])
def test_sample_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        uniform(0, 1).sample(**kwargs)


def test_domain_errors_name_what_to_do_for_log_of_value():
    with pytest.raises(ValueError, match="pass the value itself, not its logarithm"):
        loguniform(-4, -1)


# ============================================================== grid_search marker


def test_grid_search_is_rays_dict_marker():
    assert grid_search([1, 2]) == {"grid_search": [1, 2]}
    assert grid_search((x for x in "ab")) == {"grid_search": ["a", "b"]}
    assert grid_search(np.array([1, 2])) == {"grid_search": [1, 2]}
    assert type(grid_search(np.array([1, 2]))["grid_search"][0]) is int


# ============================================================== VariantGenerator: grids


def test_grid_cross_product_times_num_samples():
    space = {"a": grid_search([1, 2]), "b": grid_search(["x", "y", "z"])}
    gen = VariantGenerator(space, num_samples=2, seed=0)
    assert gen.total == 12 and gen.n_generated == 0
    out = list(gen)
    assert len(out) == 12 and gen.n_generated == 12
    one_pass = [(1, "x"), (2, "x"), (1, "y"), (2, "y"), (1, "z"), (2, "z")]
    assert [(c["a"], c["b"]) for c in out] == one_pass * 2
    with pytest.raises(StopIteration):
        gen.next_config()
    assert gen.n_generated == 12


def test_grid_order_follows_sorted_path_not_insertion_order():
    # Ray sorts the grid variables by path; the first in that order varies fastest.
    space = {"b": grid_search([1, 2]), "a": grid_search(["x", "y"])}
    out = configs(space)
    assert [(c["a"], c["b"]) for c in out] == [("x", 1), ("y", 1), ("x", 2), ("y", 2)]
    assert list(out[0]) == ["b", "a"]  # the config keeps the space's key order


def test_nested_grids_count_and_order():
    space = {
        "model": {"depth": grid_search([1, 2, 3])},
        "lr": grid_search([0.1, 0.01]),
        "layers": [{"units": grid_search([8, 16])}, 4],
    }
    gen = VariantGenerator(space, num_samples=1, seed=0)
    assert gen.total == 12
    out = list(gen)
    # paths: ("layers", 0, "units") < ("lr",) < ("model", "depth")
    got = [(c["layers"][0]["units"], c["lr"], c["model"]["depth"]) for c in out]
    expected = [(u, lr, d) for d in (1, 2, 3) for lr in (0.1, 0.01) for u in (8, 16)]
    assert got == expected
    assert all(c["layers"][1] == 4 for c in out)


def test_grid_values_holding_grids_and_domains():
    space = {
        "opt": grid_search([
            {"name": "sgd", "momentum": grid_search([0.0, 0.9])},
            {"name": "adam", "beta": uniform(0.8, 1.0)},
        ]),
        "seed": grid_search([0, 1]),
    }
    gen = VariantGenerator(space, num_samples=2, seed=0)
    assert gen.total == 2 * (2 + 1) * 2
    out = list(gen)
    assert len(out) == gen.total
    names = [(c["opt"]["name"], c["opt"].get("momentum"), c["seed"]) for c in out[:6]]
    assert names == [
        ("sgd", 0.0, 0), ("sgd", 0.9, 0), ("adam", None, 0),
        ("sgd", 0.0, 1), ("sgd", 0.9, 1), ("adam", None, 1),
    ]
    assert all(0.8 <= c["opt"]["beta"] < 1.0 for c in out if c["opt"]["name"] == "adam")


def test_hand_written_grid_marker_and_tuple_values():
    out = configs({"a": {"grid_search": (1, 2)}})
    assert [c["a"] for c in out] == [1, 2]


def test_random_domains_resampled_for_every_config():
    space = {"g": grid_search([1, 2]), "x": uniform(0, 1), "c": choice(list(range(1000)))}
    out = configs(space, num_samples=3)
    assert len(out) == 6
    assert [c["g"] for c in out] == [1, 2] * 3
    assert len({c["x"] for c in out}) == 6
    assert len({c["c"] for c in out}) >= 5


def test_no_grid_gives_num_samples_configs():
    gen = VariantGenerator({"x": randint(0, 10**9)}, num_samples=5, seed=3)
    assert gen.total == 5
    assert len({c["x"] for c in gen}) == 5


def test_constant_only_space():
    gen = VariantGenerator({"a": 1, "b": "s"}, num_samples=3, seed=0)
    assert list(gen) == [{"a": 1, "b": "s"}] * 3
    assert configs({}) == [{}]


# ============================================================== VariantGenerator: seeding


def space_with_everything() -> dict:
    return {
        "lr": loguniform(1e-4, 1e-1),
        "momentum": quniform(0, 1, 0.05),
        "noise": randn(0, 1),
        "qnoise": qrandn(0, 1, 0.1),
        "batch": qrandint(16, 256, 16),
        "depth": randint(1, 9),
        "width": lograndint(8, 1024),
        "heads": qlograndint(1, 64, 1),
        "act": choice(["relu", "tanh", {"name": "leaky", "slope": uniform(0, 0.3)}]),
        "opt": grid_search(["adam", "sgd"]),
        "nested": {"layers": [randint(1, 4), {"p": qloguniform(0.01, 1, 0.01)}], "const": None},
        "tuple": (1, uniform(0, 1), "x"),
        "flag": True,
        "ratio": math.nan,
    }


def test_same_seed_same_sequence():
    a = [config_to_json(c) for c in configs(space_with_everything(), 5, seed=42)]
    b = [config_to_json(c) for c in configs(space_with_everything(), 5, seed=42)]
    c = [config_to_json(c) for c in configs(space_with_everything(), 5, seed=43)]
    assert len(a) == 10
    assert a == b
    assert a != c


@pytest.mark.parametrize("num_samples", [1, 63, 64, 65, 300])
def test_flat_space_gives_the_configs_of_the_same_space_nested(num_samples):
    # A space that is one dict of constants, domains and choices among constants is
    # resolved on a shorter path than a nested one: the draws must be the same.
    marker = object()
    flat = {
        "lr": loguniform(1e-4, 1e-1), "units": randint(8, 64), "act": choice(["relu", "tanh"]),
        "epochs": 10, "obj": marker, "noise": randn(0, 1),
        "opt": choice([{"name": "sgd"}, ("adam", 0.9), None]), "q": qrandint(0, 100, 5),
    }
    nested = {"inner": flat}
    for seed in (0, 7):
        got = configs(flat, num_samples, seed)
        want = [c["inner"] for c in configs(nested, num_samples, seed)]
        assert len(got) == num_samples
        assert [config_to_json(c) for c in got] == [config_to_json(c) for c in want]
        assert all(c["obj"] is marker for c in got)
        assert [list(c) for c in got] == [list(flat)] * num_samples
    # with points_to_evaluate first (each one a flat space of its own)
    points = [{"lr": 0.05}, {"act": "tanh", "units": 9}]
    got = list(VariantGenerator(flat, 6, 3, points_to_evaluate=points))
    want = [c["inner"] for c in VariantGenerator(
        nested, 6, 3, points_to_evaluate=[{"inner": p} for p in points])]
    assert [config_to_json(c) for c in got] == [config_to_json(c) for c in want]
    assert got[0]["lr"] == 0.05 and got[1]["act"] == "tanh" and got[1]["units"] == 9


def test_seed_none_is_allowed():
    gen = VariantGenerator({"x": uniform(0, 1)}, num_samples=2)
    assert gen.seed is None and len(list(gen)) == 2


def test_types_of_resolved_values_are_plain_python():
    for c in configs(space_with_everything(), 10, seed=0):
        for key in ("lr", "momentum", "noise", "qnoise"):
            assert type(c[key]) is float
        for key in ("batch", "depth", "width", "heads"):
            assert type(c[key]) is int
        assert c["batch"] % 16 == 0 and 16 <= c["batch"] <= 256
        assert is_multiple(c["momentum"], 0.05)
        assert type(c["nested"]["layers"][0]) is int
        assert type(c["tuple"]) is tuple and type(c["tuple"][1]) is float


# ============================================================== VariantGenerator: structure


def test_nested_dicts_lists_tuples_and_constants():
    marker = object()
    space = {
        "layers": [{"units": randint(8, 64), "act": "relu"}, {"units": 16}],
        "opt": ("adam", {"lr": loguniform(1e-4, 1e-1)}),
        "obj": marker,
        "none": None,
        "deep": {"a": {"b": {"c": [[qrandint(0, 4, 2)]]}}},
    }
    for c in configs(space, 3, seed=0):
        assert isinstance(c["layers"], list) and len(c["layers"]) == 2
        assert 8 <= c["layers"][0]["units"] < 64 and c["layers"][0]["act"] == "relu"
        assert c["layers"][1] == {"units": 16}
        assert type(c["opt"]) is tuple and c["opt"][0] == "adam"
        assert 1e-4 <= c["opt"][1]["lr"] < 1e-1
        assert c["obj"] is marker
        assert c["none"] is None
        assert c["deep"]["a"]["b"]["c"][0][0] in (0, 2, 4)


def test_containers_are_fresh_for_every_config():
    space = {"const": {"list": [1, 2]}, "g": grid_search([1, 2])}
    first, second = configs(space)
    first["const"]["list"].append(3)
    assert second["const"]["list"] == [1, 2]
    assert space["const"]["list"] == [1, 2]


def test_dict_subclass_is_resolved_as_a_dict():
    out = configs(OrderedDict(a=OrderedDict(b=randint(0, 2))))
    assert type(out[0]["a"]) is dict and out[0]["a"]["b"] in (0, 1)


def test_choice_category_with_domains_is_resolved():
    space = {"act": choice([{"name": "leaky", "slope": uniform(0, 0.3)}, "relu"])}
    out = configs(space, 200, seed=0)
    dicts = [c["act"] for c in out if isinstance(c["act"], dict)]
    assert dicts and all(0 <= d["slope"] < 0.3 and d["name"] == "leaky" for d in dicts)
    assert len({d["slope"] for d in dicts}) == len(dicts)
    assert any(c["act"] == "relu" for c in out)


def test_space_is_not_changed_by_generation():
    space = space_with_everything()
    before = repr(space)
    configs(space, 3)
    assert repr(space) == before


# ============================================================== VariantGenerator: sample_from


def test_sample_from_reads_other_resolved_keys():
    space = {
        "double": sample_from(lambda spec: spec.config.alpha * 2),  # before alpha on purpose
        "alpha": uniform(1, 2),
        "item": sample_from(lambda spec: spec.config["alpha"] + 1),
        "old_style": sample_from(lambda spec: spec["config"]["alpha"] - 1),
        "config_item": sample_from(lambda config: config["alpha"] * 3),  # newer Ray style
        "config_attr": sample_from(lambda config: config.alpha * 4),
        "nested": sample_from(lambda spec: spec.config.model.depth * 10),
        "model": {"depth": grid_search([1, 2])},
        "from_list": sample_from(lambda spec: spec.config.sizes[1]),
        "sizes": [3, randint(4, 5)],
    }
    for c in configs(space, 2, seed=0):
        assert c["double"] == c["alpha"] * 2
        assert c["item"] == c["alpha"] + 1
        assert c["old_style"] == c["alpha"] - 1
        assert c["config_item"] == c["alpha"] * 3
        assert c["config_attr"] == c["alpha"] * 4
        assert c["nested"] == c["model"]["depth"] * 10
        assert c["from_list"] == 4
        assert list(c) == list(space)


def test_sample_from_chain_and_nesting():
    space = {
        "c": sample_from(lambda spec: spec.config.b + 1),  # needs b, which needs a
        "b": sample_from(lambda spec: spec.config.a * 10),
        "a": grid_search([1, 2]),
        "inner": {"t": (0, sample_from(lambda spec: spec.config.c))},
        "in_choice": choice([sample_from(lambda spec: spec.config.a + 100)]),
        "no_arg": sample_from(lambda: "constant"),
    }
    out = configs(space)
    assert [(c["a"], c["b"], c["c"]) for c in out] == [(1, 10, 11), (2, 20, 21)]
    assert [c["inner"]["t"] for c in out] == [(0, 11), (0, 21)]
    assert type(out[0]["inner"]["t"]) is tuple
    assert [c["in_choice"] for c in out] == [101, 102]
    assert all(c["no_arg"] == "constant" for c in out)


def test_sample_from_with_a_config_key_named_config():
    space = {"config": {"a": 1}, "x": sample_from(lambda config: config["config"]["a"]),
             "y": sample_from(lambda spec: spec.config.config.a + 1)}
    assert configs(space) == [{"config": {"a": 1}, "x": 1, "y": 2}]


def test_sample_from_returning_part_of_the_config_gives_a_plain_copy():
    space = {"model": {"depth": randint(1, 5), "act": "relu"},
             "copy": sample_from(lambda spec: spec.config.model)}
    for c in configs(space, 3):
        assert type(c["copy"]) is dict and c["copy"] == c["model"]
        assert c["copy"] is not c["model"]


def test_sample_from_spec_rng_is_seeded():
    space = {"x": sample_from(lambda spec: int(spec.rng.integers(0, 10**9)))}
    assert configs(space, 5, seed=1) == configs(space, 5, seed=1)
    assert configs(space, 5, seed=1) != configs(space, 5, seed=2)


def test_constructor_does_not_call_sample_from():
    calls = []
    gen = VariantGenerator({"x": sample_from(lambda spec: calls.append(1) or 1)}, 3, seed=0)
    assert calls == []
    assert gen.next_config() == {"x": 1}
    assert calls == [1]


def test_sample_from_cycle_is_an_error():
    space = {"a": sample_from(lambda s: s.config.b), "b": sample_from(lambda s: s.config.a)}
    gen = VariantGenerator(space, 1, seed=0)
    with pytest.raises(ValueError, match=r"wait on each other in a cycle \(config\['a'\] reads "
                                         r"config\['b'\]; config\['b'\] reads config\['a'\]\)"):
        gen.next_config()
    with pytest.raises(StopIteration):  # the stream ends after an error
        gen.next_config()


def test_sample_from_missing_key_is_an_error():
    gen = VariantGenerator({"a": sample_from(lambda s: s.config.nope)}, 1, seed=0)
    with pytest.raises(ValueError, match=r"sample_from function at config\['a'\] raised "
                                         r"AttributeError: config has no key 'nope'"):
        gen.next_config()


def test_sample_from_exception_is_wrapped_with_cause():
    gen = VariantGenerator({"a": sample_from(lambda s: 1 / 0)}, 1, seed=0)
    with pytest.raises(ValueError, match="raised ZeroDivisionError") as info:
        gen.next_config()
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# ============================================================== VariantGenerator: infinite


def test_infinite_num_samples():
    gen = VariantGenerator({"g": grid_search([1, 2, 3]), "x": uniform(0, 1)}, -1, seed=0)
    assert gen.total is None
    first = list(itertools.islice(gen, 3000))
    assert len(first) == 3000 and gen.n_generated == 3000
    assert [c["g"] for c in first] == [1, 2, 3] * 1000
    assert gen.next_config()["g"] == 1
    again = list(itertools.islice(VariantGenerator(
        {"g": grid_search([1, 2, 3]), "x": uniform(0, 1)}, -1, seed=0), 3000))
    assert again == first


# ============================================================== VariantGenerator: errors


class _FakeRayDomain:
    pass


_FakeRayDomain.__module__ = "ray.tune.search.sample"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"param_space": [1]}, TypeError, r"param_space must be a dict, got \[1\] of type list"),
        ({"num_samples": 0}, ValueError,
         r"num_samples must be a positive integer, or -1 .* got 0"),
        ({"num_samples": -2}, ValueError, r"num_samples must be a positive integer.* got -2"),
        ({"num_samples": 1.5}, TypeError, r"num_samples must be an integer, got 1.5"),
        ({"num_samples": True}, TypeError, r"num_samples must be an integer, got True"),
        ({"num_samples": "3"}, TypeError, r"num_samples must be an integer, got '3'"),
        ({"seed": -1}, ValueError, r"seed must be at least 0, got -1"),
        ({"seed": "a"}, TypeError, r"seed must be an integer, got 'a'"),
        ({"param_space": {"a": {"grid_search": []}}}, ValueError,
         r"grid_search values at config\['a'\] must not be empty"),
        ({"param_space": {"a": [{"grid_search": "abc"}]}}, TypeError,
         r"grid_search values at config\['a'\]\[0\] must be a list of options"),
        ({"param_space": {"a": {"b": grid_search([{"grid_search": 5}])}}}, TypeError,
         r"grid_search values at config\['a'\]\['b'\] must be a list"),
        ({"param_space": {"a": choice([grid_search([1, 2]), 3])}}, ValueError,
         r"config\['a'\] has a grid_search inside a choice\(\)"),
        ({"param_space": {"a": {"eval": "spec.config.b"}}}, ValueError,
         r"config\['a'\] is Ray Tune's string expression .* sample_from"),
        ({"param_space": {"a": _FakeRayDomain()}}, TypeError,
         r"config\['a'\] holds a Ray Tune object \(_FakeRayDomain\)"),
    ],
)
def test_variant_generator_errors(kwargs, exc, match):
    args = {"param_space": {"x": uniform(0, 1)}, "num_samples": 1, "seed": 0} | kwargs
    with pytest.raises(exc, match=match):
        VariantGenerator(**args)


def test_eval_like_constant_dict_is_fine():
    assert configs({"eval": {"batch_size": 32}}) == [{"eval": {"batch_size": 32}}]


# ============================================================== JSON: spaces


def roundtrip(space: dict) -> dict:
    description = space_to_json(space)
    assert description is not None
    return space_from_json(json.loads(json.dumps(description)))


@pytest.mark.parametrize("num_samples", [1, 3])
def test_space_json_roundtrip_gives_identical_configs(num_samples):
    space = space_with_everything()
    rebuilt = roundtrip(space)
    original = [config_to_json(c) for c in configs(space, num_samples, seed=5)]
    again = [config_to_json(c) for c in configs(rebuilt, num_samples, seed=5)]
    assert original == again
    assert len(original) == 2 * num_samples


def test_space_json_roundtrip_preserves_structure():
    space = {
        "a": uniform(0, 1), "b": qrandint(0, 10, 5), "c": choice([1, "x", None, [1, 2], (3,)]),
        "d": grid_search([1, {"e": randn(2, 3)}]), "t": (1, [2, {"k": False}]),
        3: "int key", None: 1.5, "neg0": -0.0, "inf": math.inf, "big": 2**80,
    }
    rebuilt = roundtrip(space)
    assert list(rebuilt) == list(space)
    assert rebuilt["a"] == space["a"] and rebuilt["b"] == space["b"]
    assert rebuilt["c"] == space["c"]
    assert rebuilt["d"] == space["d"]
    assert rebuilt["t"] == space["t"] and type(rebuilt["t"]) is tuple
    assert rebuilt[3] == "int key" and rebuilt[None] == 1.5
    assert math.copysign(1, rebuilt["neg0"]) == -1 and rebuilt["inf"] == math.inf
    assert rebuilt["big"] == 2**80


def test_space_json_accepts_text():
    text = json.dumps(space_to_json({"x": loguniform(1e-3, 1)}))
    assert space_from_json(text) == {"x": loguniform(1e-3, 1)}


@settings(max_examples=50, deadline=None)
@given(
    tree=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=12,
    ),
    seed=st.integers(0, 2**32),
)
def test_property_constant_trees_roundtrip(tree, seed):
    space = {"tree": tree, "x": uniform(0, 1), "g": grid_search([tree, 1])}
    assert configs(roundtrip(space), 2, seed) == configs(space, 2, seed)


@pytest.mark.parametrize(
    "space",
    [
        {"f": sample_from(lambda spec: 1)},
        {"obj": object()},
        {"c": choice([object()])},
        {"nested": [{"arr": np.arange(3)}]},
        {"np_complex": np.complex128(1.0)},
        {("tuple", "key"): 1},
        {"g": grid_search([lambda: 1])},
        {"set": {1, 2}},
    ],
    ids=["sample_from", "object", "category", "array", "numpy-complex", "tuple-key", "grid",
         "set"],
)
def test_space_to_json_returns_none_when_not_describable(space):
    assert space_to_json(space) is None


def test_numpy_scalars_roundtrip_with_their_type():
    """Grids from np.linspace / np.arange are common in Ray scripts: they are stored too."""
    values = [np.float64(0.5), np.float32(0.1), np.float16(2.5), np.int64(-3), np.uint8(7),
              np.int32(2**31 - 1), np.bool_(True)]
    rebuilt = roundtrip({"g": grid_search(values), "c": choice(values), "k": np.float32(0.3)})
    for got, want in zip(rebuilt["g"]["grid_search"], values):
        assert type(got) is type(want) and got == want
    assert [type(c) for c in rebuilt["c"].categories] == [type(v) for v in values]
    assert type(rebuilt["k"]) is np.float32 and rebuilt["k"] == np.float32(0.3)
    with pytest.raises(ValueError, match="numpy bool, integer or float type name"):
        space_from_json({"format": "fastasha.search_space/1",
                         "space": {"numpy": ["object", 1]}})
    assert space_to_json({"x": np.longdouble(0.5)}) is None     # its item() is no Python float


@pytest.mark.parametrize("node", [["uint8", 300], ["uint64", -1], ["int64", 2**70],
                                  ["int64", 1.5], ["int8", True], ["bool", 5],
                                  ["float16", 1e10], ["float32", "0.5"]])
def test_a_numpy_node_out_of_its_types_range_or_kind_is_a_value_error(node):
    """Never an OverflowError, a wrapped integer or a finite number turned infinite."""
    description = {"format": "fastasha.search_space/1", "space": {"dict": [["a", {"numpy": node}]]}}
    with pytest.raises(ValueError, match=r"at space.dict\[0\]: expected \[a numpy bool"):
        space_from_json(description)


def test_space_to_json_validates_the_space():
    with pytest.raises(ValueError, match="must not be empty"):
        space_to_json({"a": {"grid_search": []}})
    with pytest.raises(TypeError, match="param_space must be a dict"):
        space_to_json([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("obj", "exc", "match"),
    [
        (5, TypeError, r"obj must be the dict returned by space_to_json\(\) or its JSON text"),
        ("{not json", ValueError, r"obj is not valid JSON text"),
        ({"space": {"dict": []}}, ValueError, r"expected the keys 'format'"),
        ({"format": "other/1", "space": {"dict": []}}, ValueError, r"with format 'other/1'"),
        ({"format": "fastasha.search_space/1", "space": {"list": []}}, ValueError,
         r"expected a 'dict' node at the top"),
        ({"format": "fastasha.search_space/1", "space": {"bogus": 1}}, ValueError,
         r"at space: expected one of the keys const, numpy, dict"),
        ({"format": "fastasha.search_space/1", "space": {"dict": [["a", {"const": [1]}]]}},
         ValueError, r"at space.dict\[0\]: expected a JSON scalar after 'const'"),
        ({"format": "fastasha.search_space/1", "space": {"dict": [["a"]]}},
         ValueError, r"expected a \[key, node\] pair"),
        ({"format": "fastasha.search_space/1", "space": {"dict": {"a": 1}}},
         ValueError, r"expected a list of \[key, node\] pairs"),
        ({"format": "fastasha.search_space/1",
          "space": {"dict": [["a", {"float": {"lower": 0, "upper": 1, "color": 3}}]]}},
         ValueError, r"expected an object with some of the fields"),
        ({"format": "fastasha.search_space/1",
          "space": {"dict": [["a", {"float": {"lower": 2, "upper": 1}}]]}},
         ValueError, r"lower must be less than upper"),
        ({"format": "fastasha.search_space/1", "space": {"dict": [["a", {"list": 3}]]}},
         ValueError, r"expected a list after 'list'"),
        ({"format": "fastasha.search_space/1", "space": {"dict": [["a", 1]]}},
         ValueError, r"expected an object with one key"),
    ],
)
def test_space_from_json_errors(obj, exc, match):
    with pytest.raises(exc, match=match):
        space_from_json(obj)


# ============================================================== JSON: configs


def test_config_to_json_plain_values():
    config = {"a": 1, "b": 2.5, "c": "s", "d": None, "e": True, "f": [1, {"g": 2}]}
    assert json.loads(config_to_json(config)) == config


def test_config_to_json_converts_numpy_and_tuples():
    config = {
        "f": np.float32(0.5), "i": np.int64(3), "b": np.bool_(True), "s": np.str_("x"),
        "arr": np.arange(3), "mat": np.ones((2, 2)), "zero_d": np.array(7),
        "t": (1, (2, 3)),
    }
    loaded = json.loads(config_to_json(config))
    assert loaded == {"f": 0.5, "i": 3, "b": True, "s": "x", "arr": [0, 1, 2],
                      "mat": [[1.0, 1.0], [1.0, 1.0]], "zero_d": 7, "t": [1, [2, 3]]}
    assert type(loaded["i"]) is int and type(loaded["b"]) is bool


def test_config_to_json_objects_become_repr():
    class Odd:
        def __repr__(self) -> str:
            return "Odd()"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    config = {"odd": Odd(), "broken": Broken(), "set": {3}, "cplx": 1 + 2j,
              np.int64(4): "numpy key", ("t", 1): "tuple key"}
    loaded = json.loads(config_to_json(config))
    assert loaded["odd"] == {"__repr__": "Odd()"}
    assert loaded["broken"] == {"__repr__": "<Broken object; repr() failed>"}
    assert loaded["set"] == {"__repr__": "{3}"}
    assert loaded["cplx"] == {"__repr__": "(1+2j)"}
    assert loaded["4"] == "numpy key"
    assert loaded["('t', 1)"] == "tuple key"


def test_config_to_json_nan_and_inf_and_cycles_never_raise():
    text = config_to_json({"nan": math.nan, "inf": -math.inf})
    assert text == '{"nan":NaN,"inf":-Infinity}'
    loop: list = [1]
    loop.append(loop)
    assert json.loads(config_to_json({"loop": loop})) == {"loop": [1, {"__repr__": "<cycle>"}]}
    deep: list = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    assert isinstance(config_to_json(deep), str)


def test_config_to_json_is_deterministic_and_keeps_order():
    config = {"z": 1, "a": 2, "m": {"y": 1, "b": 2}}
    assert config_to_json(config) == '{"z":1,"a":2,"m":{"y":1,"b":2}}'
    assert config_to_json(dict(config)) == config_to_json(config)


def test_config_to_json_of_generated_configs_loads_back():
    for c in configs(space_with_everything(), 3, seed=9):
        loaded = json.loads(config_to_json(c))
        assert loaded["lr"] == c["lr"] and loaded["batch"] == c["batch"]
        assert loaded["tuple"] == list(c["tuple"])
