"""JSON encoders that give ``json.JSONEncoder(...).encode``'s text with less work per call.

``JSONEncoder.encode`` makes a new C encoder on every call (through
``iterencode``, with a closure and nine arguments), which takes about as
long as encoding a small dict. The driver encodes a config and a result per
trial, so :func:`encoder` makes it once where it can.
"""

from __future__ import annotations

import json
from json import encoder as _std
from typing import Any, Callable

# a value that takes every branch of the C encoder used here, to check it against
# JSONEncoder.encode once at import (its arguments are CPython's own business)
_PROBE = {"a": [1, -2.5, float("nan"), float("inf"), None, True, False], "b\u00e9\n": {"c": ()},
          3: "x"}


def encoder(default: Callable[[Any], Any] | None = None,
            separators: tuple[str, str] = (", ", ": "),
            acyclic: bool = False) -> Callable[[Any], str]:
    """``json.JSONEncoder(default=default, separators=separators).encode``, faster.

    Gives the same text and raises the same errors. With ``acyclic=True``
    the caller guarantees that no value it encodes contains itself: the C
    encoder is then made once, without the check for cycles; otherwise once
    per call, which still skips ``encode``'s Python layers. Where CPython's C
    encoder is missing, or takes other arguments, this is ``encode`` itself.
    """
    reference = json.JSONEncoder(default=default, separators=separators)
    make = _std.c_make_encoder
    if make is None:
        return reference.encode
    item_separator, key_separator = separators
    args = (reference.default, _std.encode_basestring_ascii, None, key_separator,
            item_separator, False, False, True)

    if acyclic:
        made = make(None, *args)

        def encode(obj: Any) -> str:
            return "".join(made(obj, 0))
    else:
        def encode(obj: Any) -> str:
            return "".join(make({}, *args)(obj, 0))
    try:
        same = encode(_PROBE) == reference.encode(_PROBE)
    except Exception:   # noqa: BLE001 - another signature: the reference it is
        same = False
    return encode if same else reference.encode
