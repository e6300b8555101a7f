"""The fast JSON encoders give the text and the errors of json.JSONEncoder.encode."""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastasha._json import encoder
from fastasha._rows import json_default
from fastasha.search import config_to_json


class Color(enum.Enum):
    RED = 1


class MyFloat(float):
    def __repr__(self) -> str:
        return "my"


class MyStr(str):
    pass


VALUES = [
    None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e300, math.nan, math.inf, -math.inf,
    "", "plain", "é\n\"\\\u2028\U0001f600", MyStr("sub"), MyFloat(2.5), True + 1,
    [], {}, (), [1, [2, [3, {"a": (4, 5)}]]], {"x": 0.1, "y": [None, "z"], 1: 2, 2.5: "f",
                                                 None: 0, True: 1},
    OrderedDict(b=1, a=2), {"deep": {"er": {"est": [{"k": "v"}]}}},
]
ODD = [np.float32(0.25), np.int64(3), np.array([1.0, 2.0]), {1, 2}, Color.RED, object(),
       {"n": np.bool_(True)}, {(1, 2): "tuple key"}, b"bytes"]
SEPARATORS = [(", ", ": "), (",", ":")]


def _outcome(fn, value):
    try:
        return "ok", fn(value)
    except Exception as err:   # noqa: BLE001 - the error is what is compared
        return type(err), str(err)


@pytest.mark.parametrize("separators", SEPARATORS)
@pytest.mark.parametrize("default", [None, json_default])
@pytest.mark.parametrize("acyclic", [False, True])
def test_same_text_and_errors_as_json_encoder(separators, default, acyclic):
    fast = encoder(default, separators, acyclic)
    reference = json.JSONEncoder(default=default, separators=separators).encode
    assert not hasattr(fast, "__self__")     # not JSONEncoder.encode: CPython's C encoder
    for value in VALUES + ODD:
        assert _outcome(fast, value) == _outcome(reference, value), value


@pytest.mark.parametrize("separators", SEPARATORS)
def test_a_cycle_is_refused_as_by_json_encoder_and_leaves_no_trace(separators):
    fast = encoder(json_default, separators)
    reference = json.JSONEncoder(default=json_default, separators=separators).encode
    loop: dict = {"a": 1}
    loop["self"] = loop
    cycle: list = [1]
    cycle.append(cycle)
    for value in (loop, cycle, {"x": [loop]}):
        assert _outcome(fast, value) == _outcome(reference, value)
        assert _outcome(fast, value)[0] is ValueError
    # an error half-way through does not make the next, acyclic value look like a cycle
    shared = {"v": 1}
    assert fast({"a": shared, "b": shared}) == reference({"a": shared, "b": shared})
    bad = {"ok": shared, "bad": object()}
    assert _outcome(encoder(None, separators), bad)[0] is TypeError
    assert fast(shared) == reference(shared)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) |
    st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_property_same_text_as_json_encoder(value):
    for separators in SEPARATORS:
        reference = json.JSONEncoder(default=json_default, separators=separators).encode
        assert encoder(json_default, separators)(value) == reference(value)
        assert encoder(json_default, separators, acyclic=True)(value) == reference(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.none() | st.booleans() | st.integers() |
                       st.floats() | st.text(max_size=8), max_size=6))
def test_property_config_to_json_of_a_flat_config_is_compact_json(config):
    assert config_to_json(config) == json.dumps(config, separators=(",", ":"))
