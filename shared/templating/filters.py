"""Size guards around python-liquid's standard filters.

Filters run before anything is written, so the output limit alone cannot stop a template from building a
huge value: `replace` multiplies a string, `concat` doubles a list each time it runs in a loop, `times`
squares a number. Every filter call therefore checks its inputs and its result, and the two filters whose
result can be far larger than their inputs (`replace`, `join`) are checked before they run.
No filter takes a regular expression from the template; the built-in ones use fixed patterns only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from liquid import Environment
from liquid.exceptions import ResourceLimitError

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
    """Wrap every filter registered on `env` with the size and time guards."""
    for name, func in list(env.filters.items()):
        env.filters[name] = _guarded(name, func)
