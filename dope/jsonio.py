"""JSON for records: orjson's speed, the standard library's bytes.

`dumps(obj)` returns exactly what `json.dumps(obj, allow_nan=False)` returned for `obj` with every
non-finite float replaced by None (the text `--json` has always written: `", "` and `": "`
separators, non-ASCII characters escaped, Python's spelling of floats such as `1e-05`), several
times faster on a crowd's records (docs/performance.md). `loads(text)` returns what `json.loads(text)`
returns; `loads_fast(raw)` the same or NOT_TAKEN, for readers that decode the text themselves.
`rows(a)` is `[dumps(row) for row in a.tolist()]` for a float64 array, made from the whole array
(orjson's OPT_SERIALIZE_NUMPY, respelt the same way) without a Python number per value.

Both use orjson (a core dependency) when it is installed and spells numbers as this module
expects (checked once, on first use, against the standard library; the outcome is logged); any
object or text orjson does not take (NaN or Infinity literals in a file, integers of 19 digits or
more, keys that are not strings, numpy scalars, a string holding a quote) goes through the standard
library, so that the result never depends on the fast path. Without orjson, everything goes
through the standard library, slower.

How the text is made the standard library's: orjson writes compact JSON, raw UTF-8 and its own
float spellings. The output is cut at its quotes (string contents and the rest alternate when
no string holds a quote): outside the strings every `,` and `:` is a separator and gets its
space, and the few numbers that Python spells otherwise (exponents, and magnitudes below 1e-4,
which Python writes with one: orjson writes `0.00005` and `1e-7`, Python `5e-05` and `1e-07`)
are rewritten with `repr`; strings with non-ASCII characters are escaped as `json` does.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
from json.encoder import encode_basestring_ascii
from typing import Any, Iterator, Optional

import numpy as np

try:
    import orjson
except ImportError:  # a platform without its wheel: the standard library, slower
    orjson = None

log = logging.getLogger(__name__)

# Objects orjson would write but json refuses (dataclasses, datetimes) or writes otherwise
# (subclasses of str, int, float: numpy's float64) go to the standard library.
_OPTIONS = 0 if orjson is None else (orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
                                     | orjson.OPT_PASSTHROUGH_SUBCLASS)
_NUMBER_BYTES = frozenset(b"0123456789.-+eE")
# Values whose spelling differs between JSON writers: the probe of `fast()`.
_PROBE = {"a, b: c": [0.0, -0.0, 1.0, 0.1, 1e-4, 9.9999e-05, 1e-05, 5.5e-05, -3.2e-06, 1e-07, 2.5e-310,
                      5e-324, 123456.789, 1e15, 9999999999999998.0, 1e16, -1.5e16, 1e22, 1.7976931348623157e308,
                      3.4028234663852886e38, float("nan"), float("inf"), -float("inf")],
          "é\u007f\x1f\\x": [True, False, None, 0, -7, 2 ** 63 - 1, "C:\\x", "tab\t", "\u2028"], "": {}}


def _finite(x: Any) -> Any:
    """x with every non-finite float (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def dumps_stdlib(obj: Any) -> str:
    """The reference: the standard library's JSON of obj, non-finite floats as null."""
    return json.dumps(_finite(obj), allow_nan=False)


@functools.lru_cache(maxsize=1)
def fast() -> bool:
    """Whether orjson is installed and, once its text is turned into the standard library's, writes
    the probe's values as `json` does (a later orjson may spell numbers otherwise: then the
    standard library is used, and a log line says so)."""
    if orjson is None:
        log.info("orjson is not installed: JSON Lines are read and written with the standard library (slower)")
        return False
    return _agrees(lambda: _from_orjson(orjson.dumps(_PROBE, option=_OPTIONS)), lambda: dumps_stdlib(_PROBE),
                   "numbers", "JSON Lines are written with the standard library (slower)")


def _agrees(ours: Any, reference: Any, what: str, otherwise: str) -> bool:
    """Whether ours() gives the text reference() gives; if not (or if ours raises: an orjson this
    module does not know), a log line says that orjson writes `what` otherwise, and what is done."""
    try:
        same = ours() == reference()
    except Exception:  # noqa: BLE001 - any failure means: do not use it
        same = False
    if not same:
        log.info("orjson %s writes %s unlike this version of DOPE expects: %s", getattr(orjson, "__version__", "?"),
                 what, otherwise)
    return same


def dumps(obj: Any) -> str:
    """`json.dumps(obj, allow_nan=False)` of obj with its non-finite floats as null, byte for byte (see
    the module's docstring); TypeError or ValueError as json raises them."""
    if fast():
        try:
            text = _from_orjson(orjson.dumps(obj, option=_OPTIONS))
        except (TypeError, ValueError):  # orjson.JSONEncodeError included: json decides (and raises its error)
            text = None
        if text is not None:
            return text
    return dumps_stdlib(obj)


def _from_orjson(raw: bytes) -> Optional[str]:
    """orjson's compact text as the standard library writes it; None when a string holds a quote
    (`\\"`, rare: then the quotes do not alternate between strings and the rest)."""
    if b'\\"' in raw:
        return None
    parts = raw.split(b'"')  # even: outside strings; odd: string contents
    outside = b'"'.join(parts[0::2]).replace(b",", b", ").replace(b":", b": ")
    for mark in (b"e", b"0.0000"):  # exponents (the e of true and false is left alone); and 1e-5 <= |x| < 1e-4,
        outside = _respell(outside, mark)  # where Python writes an exponent and orjson none
    parts[0::2] = outside.split(b'"')
    strings = parts[1::2]
    joined = b"".join(strings)
    if not joined.isascii() or b"\x7f" in joined:
        for i in range(1, len(parts), 2):
            s = parts[i]
            if not s.isascii() or b"\x7f" in s:
                parts[i] = encode_basestring_ascii(orjson.loads(b'"' + s + b'"'))[1:-1].encode("ascii")
    return b'"'.join(parts).decode("ascii")


def _respell(text: bytes, mark: bytes) -> bytes:
    """text (outside strings) with each number that holds `mark` written as Python's repr."""
    out, last = [], 0
    pos = text.find(mark)
    n = len(text)
    while pos != -1:
        start, end = pos, pos + len(mark)
        while start > 0 and text[start - 1] in _NUMBER_BYTES:
            start -= 1
        while end < n and text[end] in _NUMBER_BYTES:
            end += 1
        token = text[start:end]
        if token[:1] not in (b"e", b"") and start >= last:  # not the e of true or false
            spelt = repr(float(token)).encode("ascii")
            if spelt != token:
                out += (text[last:start], spelt)
                last = end
        pos = text.find(mark, end)
    if not out:
        return text
    out.append(text[last:])
    return b"".join(out)


@functools.lru_cache(maxsize=1)
def fast_arrays() -> bool:
    """Whether `rows` may let orjson write float64 arrays (OPT_SERIALIZE_NUMPY): `fast()` holds and
    orjson's text of the probe's numbers as an array, once respelt, is the standard library's
    text of them as a list (checked once, on first use; the outcome is logged)."""
    if not fast() or not hasattr(orjson, "OPT_SERIALIZE_NUMPY"):
        return False
    probe = np.array([v for v in _PROBE["a, b: c"]] * 2, np.float64).reshape(2, -1, 1)
    return _agrees(lambda: _numbers_from_orjson(orjson.dumps(probe, option=orjson.OPT_SERIALIZE_NUMPY)),
                   lambda: dumps_stdlib(probe.tolist()), "numpy arrays", "poses are written through lists (slower)")


def rows(a: np.ndarray) -> list[str]:
    """`[dumps(row) for row in a.tolist()]` for a float64 array of one or more axes (none of them
    empty past the first): the text of each row, non-finite numbers as null, made from the whole
    array at once (by orjson when `fast_arrays()`, else by the standard library) and cut at the
    rows' bounds. For a crowd's poses, a third of a million numbers a frame, without a list of them."""
    if a.dtype != np.float64 or a.ndim == 0 or 0 in a.shape[1:]:
        raise ValueError(f"rows: expected float64[N, ...] without empty axes past the first, got {a.dtype} {a.shape}")
    if len(a) == 0:
        return []
    if fast_arrays():
        text = _numbers_from_orjson(orjson.dumps(np.ascontiguousarray(a), option=orjson.OPT_SERIALIZE_NUMPY))
    else:
        text = dumps_stdlib(a.tolist())
    depth = a.ndim - 1  # brackets around each row
    opening, closing = "[" * depth, "]" * depth
    inner = text[1 + depth:-1 - depth].split(closing + ", " + opening)
    if depth == 0:
        return inner
    return [opening + row + closing for row in inner]


def _numbers_from_orjson(raw: bytes) -> str:
    """orjson's compact text of numbers alone (brackets, commas, numbers, null) as the standard
    library writes it: a space after each comma, Python's spelling of the numbers it spells otherwise."""
    text = raw.replace(b",", b", ")
    for mark in (b"e", b"0.0000"):  # see _from_orjson
        text = _respell(text, mark)
    return text.decode("ascii")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the block, then as it was. Parsing a record makes hundreds of
    thousands of lists at once, all alive until the end: with the collector on, its full passes
    rescan the half-built record again and again (four to five times the parse's own time in a
    process that imported torch). The record holds no cycles; nothing else changes."""
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


NOT_TAKEN = object()  # what `loads_fast` returns for a text it leaves to json


def loads_fast(raw: bytes) -> Any:
    """What `json.loads(raw.decode("utf-8"))` returns, by orjson; NOT_TAKEN when orjson is missing or
    does not take the text as json would (not JSON, not UTF-8, NaN literals, long integers: see `loads`)."""
    if orjson is None or _long_integer(raw):
        return NOT_TAKEN
    try:
        with collector_paused():
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOT_TAKEN


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`: the same objects, by orjson when it takes the text (standard JSON, integers
    within 64 bits: orjson reads longer ones as floats), else by json (NaN and Infinity literals,
    long integers, and every error message)."""
    if orjson is not None:
        try:
            raw = text.encode("utf-8") if isinstance(text, str) else text
        except UnicodeEncodeError:  # a str holding lone surrogates
            raw = None
        if raw is not None and not _long_integer(raw):
            try:
                with collector_paused():
                    return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
    return json.loads(text)


# "0" for a digit, "." for a point, "a" for anything else
_DIGITS_AS_ZEROS = bytes(48 if 48 <= c <= 57 else 46 if c == 46 else 97 for c in range(256))
_LONG = b"a" + b"0" * 19  # 19 digits not after a point: past 2**63, where orjson's integers may end


def _long_integer(raw: bytes) -> bool:
    """Whether the text may hold an integer of 19 digits or more (a run of digits after neither a point
    nor another digit, and before neither a point nor an exponent; digits in strings count too: they
    only cost speed)."""
    digits = b"a" + raw.translate(_DIGITS_AS_ZEROS)
    pos = digits.find(_LONG)
    while pos != -1:
        end = pos + len(_LONG)
        while digits[end:end + 1] == b"0":
            end += 1
        if raw[end - 1:end] not in (b".", b"e", b"E"):  # raw is digits shifted by one
            return True
        pos = digits.find(_LONG, end)
    return False
