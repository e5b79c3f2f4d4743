"""Size guards around python-liquid's standard filters.

Filters run before anything is written, so the output limit alone cannot stop a template from building a
huge value: `replace` multiplies a string, `concat` doubles a list each time it runs in a loop, `times`
squares a number. Every filter call therefore checks its inputs and its result, and the two filters whose
result can be far larger than their inputs (`replace`, `join`) are checked before they run.
No filter takes a regular expression from the template; the built-in ones use fixed patterns only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from liquid import Environment
from liquid.exceptions import FilterArgumentError, ResourceLimitError
from liquid.filter import sequence_filter

from .limits import MAX_NUMBER_BITS, MAX_VALUE_CHARS, MAX_VALUE_ITEMS

Filter = Callable[..., object]


class ValueLimitError(ResourceLimitError):
    """A filter was given, or would have produced, a string or list over the sandbox's size limits."""


class NumberLimitError(ValueLimitError):
    """A filter produced an integer over MAX_NUMBER_BITS."""


class _Metered(Protocol):
    def check_deadline(self) -> None: ...


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _check_value(value: object) -> None:
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise ValueLimitError("value size limit reached", token=None)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_NUMBER_BITS:
            raise NumberLimitError("number size limit reached", token=None)
    elif isinstance(value, range):
        if len(value) > MAX_VALUE_ITEMS:
            raise ValueLimitError("value size limit reached", token=None)
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_VALUE_ITEMS:
            raise ValueLimitError("value size limit reached", token=None)
        if sum(len(item) for item in value if isinstance(item, str)) > MAX_VALUE_CHARS:
            raise ValueLimitError("value size limit reached", token=None)


def _before_replace(value: object, seq: object = "", sub: object = "", *_: object, **__: object) -> None:
    text, old, new = _text(value), _text(seq), _text(sub)
    if len(new) > len(old) and len(text) + text.count(old) * (len(new) - len(old)) > MAX_VALUE_CHARS:
        raise ValueLimitError("value size limit reached", token=None)


def _before_join(value: object, separator: object = " ", *_: object, **__: object) -> None:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return
    step = len(_text(separator))
    total = 0
    for item in value:
        total += step + len(_text(item))
        if total > MAX_VALUE_CHARS:
            raise ValueLimitError("value size limit reached", token=None)


_BEFORE: dict[str, Callable[..., None]] = {"replace": _before_replace, "join": _before_join}


def _guarded(name: str, func: Filter) -> Filter:
    wants_context = getattr(func, "with_context", False)
    before = _BEFORE.get(name)

    @functools.wraps(func)
    def guarded(left: object, *args: object, context: _Metered, **kwargs: Any) -> object:
        context.check_deadline()
        _check_value(left)
        for arg in args:
            _check_value(arg)
        if before is not None:
            before(left, *args, **kwargs)
        if wants_context:
            kwargs["context"] = context
        result = func(left, *args, **kwargs)
        _check_value(result)
        return result

    # The render context hands itself to filters flagged `with_context`; the guard needs it for the deadline.
    guarded.with_context = True  # type: ignore[attr-defined]
    guarded.__dict__.pop("filter_async", None)  # async rendering would bypass the guard; we only render sync
    return guarded


def guard_filters(env: Environment) -> None:
    """Swap in the linear filters, then wrap every filter registered on `env` with the size and time guards."""
    env.filters.update(LINEAR_FILTERS)
    for name, func in list(env.filters.items()):
        env.filters[name] = _guarded(name, func)


# --- linear replacements for python-liquid filters that are quadratic on hostile input -------------

# A tag runs from "<" and a name character to the first ">" outside quotes. Possessive quantifiers
# never backtrack, so a match attempt costs the length it covers, and it can only fail by running out
# of text (an unclosed quote or no ">"): the scan then stops and the rest is kept as text.
_TAG = re.compile(r"""<[A-Za-z/!?](?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RAW_TEXT = ("script", "style")


def strip_html(value: object) -> str:
    """Remove HTML tags, comments and script/style elements; time linear in the input.

    python-liquid's `strip_html` uses HTMLParser, which rescans unterminated markup and is quadratic
    (`>` then `<a b='` repeated over 96 KB took 20 s). Text and entities are kept as written.
    """
    text = _text(value)
    if "<" not in text:
        return text
    lower = text.translate(_ASCII_LOWER)  # same length as text, so indexes carry over
    kept: list[str] = []
    position = 0
    length = len(text)
    while position < length:
        start = text.find("<", position)
        if start < 0:
            kept.append(text[position:])
            break
        kept.append(text[position:start])
        if lower.startswith("<!--", start):
            end = lower.find("-->", start + 4)
            if end < 0:
                break  # an unclosed comment hides the rest
            position = end + 3
            continue
        tag = _TAG.match(text, start)
        if tag is None:
            if start + 1 < length and (
                text[start + 1].isascii() and text[start + 1].isalpha() or text[start + 1] in "/!?"
            ):
                kept.append(text[start:])  # markup left open until the end: keep it as text
                break
            kept.append("<")  # "a < b": not markup
            position = start + 1
            continue
        position = tag.end()
        name = lower[start + 1 : start + 8]
        for raw in _RAW_TEXT:
            if name.startswith(raw) and not name[len(raw) : len(raw) + 1].isalnum():
                close = lower.find(f"</{raw}", position)
                if close < 0:
                    return "".join(kept)  # an unclosed script or style element hides the rest
                end = lower.find(">", close)
                position = length if end < 0 else end + 1
                break
    return "".join(kept)


def _frozen(value: object) -> object:
    """A hashable stand-in that is equal exactly when the values are (dicts and lists by content)."""
    if isinstance(value, dict):
        return ("dict", frozenset((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(_frozen(item) for item in value))
    hash(value)
    return value


_MISSING = object()


@sequence_filter
def uniq(sequence: list[object], key: object = None) -> list[object]:
    """Liquid's `uniq` in linear time (python-liquid compares each item with every earlier one)."""
    seen: set[object] = set()
    result: list[object] = []
    for item in sequence:
        probe: object = item
        if key is not None:
            try:
                probe = item[key]  # type: ignore[index]
            except KeyError:
                probe = _MISSING
            except TypeError as err:
                raise FilterArgumentError(f"can't read property '{key}'", token=None) from err
        try:
            marker = _frozen(probe)
        except TypeError:  # unhashable and not a dict or list: compare by identity
            marker = ("id", id(probe))
        if marker not in seen:
            seen.add(marker)
            result.append(item)
    return result


LINEAR_FILTERS: dict[str, Filter] = {"strip_html": strip_html, "uniq": uniq}
