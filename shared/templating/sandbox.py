"""Parse, render and evaluate untrusted Liquid templates inside the sandbox.

Error messages are built here from the template position, the offending template token and the limit:
python-liquid's own messages may quote values from the render context, which can hold secrets, so they
are never passed on for render-time errors, and exceptions are raised `from None`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liquid import BoundTemplate
from liquid.exceptions import (
    BlockNestingError,
    ContextDepthError,
    FilterArgumentError,
    FilterError,
    FilterItemTypeError,
    FilterValueError,
    LiquidError,
    LiquidSyntaxError,
    LiquidTypeError,
    LiquidValueError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
    UnknownFilterError,
)

from .cache import TemplateCache
from .environment import CharLimitedBuffer, RenderTimeLimitError, SandboxContext, SandboxEnvironment
from .errors import TemplateError, TemplateLimitError, TemplateSyntaxError
from .filters import NumberLimitError, ValueLimitError
from .limits import (
    MAX_CONDITION_CHARS,
    MAX_LOCALS_BYTES,
    MAX_LOOP_ITERATIONS,
    MAX_NESTING_DEPTH,
    MAX_NUMBER_BITS,
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    MAX_VALUE_CHARS,
    MAX_VALUE_ITEMS,
    RENDER_TIME_LIMIT_SECONDS,
)

_ENV = SandboxEnvironment()
# A dense 64 KB template parses to about 4 MB, so the source budget bounds the cache near 130 MB.
_CACHE: TemplateCache[BoundTemplate] = TemplateCache(max_entries=1024, max_chars=2 * 1_048_576)

LOOP_LIMIT_MESSAGE = f"Template exceeded the loop iteration limit of {MAX_LOOP_ITERATIONS}"
OUTPUT_LIMIT_MESSAGE = f"Template exceeded the output size limit of {MAX_OUTPUT_CHARS} characters (256 KB)"
DEPTH_LIMIT_MESSAGE = f"Template exceeded the nesting depth limit of {MAX_NESTING_DEPTH}"

_LIMIT_MESSAGES: list[tuple[type[ResourceLimitError], str]] = [
    (LoopIterationLimitError, LOOP_LIMIT_MESSAGE),
    (OutputStreamLimitError, OUTPUT_LIMIT_MESSAGE),
    (BlockNestingError, DEPTH_LIMIT_MESSAGE),
    (ContextDepthError, DEPTH_LIMIT_MESSAGE),
    (NumberLimitError, f"Template exceeded the number size limit of {MAX_NUMBER_BITS} bits"),
    (
        ValueLimitError,
        f"Template exceeded the value size limit of {MAX_VALUE_CHARS} characters or {MAX_VALUE_ITEMS} items",
    ),
    (
        LocalNamespaceLimitError,
        f"Template exceeded the assigned variables size limit of {MAX_LOCALS_BYTES // 1_048_576} MiB",
    ),
    (
        RenderTimeLimitError,
        f"Template exceeded the render time limit of {RENDER_TIME_LIMIT_SECONDS:g} seconds",
    ),
]

# A bare condition is evaluated as this `if` tag; `shift` below is the length of the prefix.
_CONDITION_PREFIX = "{% if "
_CONDITION_SUFFIX = " %}true{% else %}false{% endif %}"


def _position(source: str, index: int, shift: int) -> tuple[int, int]:
    if shift:  # a wrapped bare condition: report the position within the expression its author wrote
        source, index = source[shift : len(source) - len(_CONDITION_SUFFIX)], index - shift
    index = max(0, min(index, len(source)))
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _located(cls: type[TemplateError], err: LiquidError, text: str, source: str, shift: int) -> TemplateError:
    token = err.token
    # A token without a position (e.g. "expected tag endif") means the template ended too early.
    index = token.start_index if token is not None and token.start_index >= 0 else len(source)
    line, column = _position(source, index, shift)
    return cls(f"line {line}, column {column}: {text}", line=line, column=column)


def _limit_error(err: ResourceLimitError, source: str, shift: int) -> TemplateLimitError:
    # The message is the limit alone, so callers can show it as is; the position goes in line/column.
    message = next(text for kind, text in _LIMIT_MESSAGES if isinstance(err, kind))
    index = err.token.start_index if err.token is not None and err.token.start_index >= 0 else 0
    line, column = _position(source, index, shift)
    return TemplateLimitError(message, line=line, column=column)


def _syntax_error(err: LiquidError, source: str, shift: int) -> TemplateError:
    if isinstance(err, ResourceLimitError):
        return _limit_error(err, source, shift)
    if type(err) is LiquidError:  # from_string wraps unexpected parser failures in a bare LiquidError
        return TemplateSyntaxError("line 1, column 1: the template could not be parsed", line=1, column=1)
    return _located(TemplateSyntaxError, err, str(err.message), source, shift)


def _render_error(err: LiquidError, source: str, shift: int) -> TemplateError:
    if isinstance(err, ResourceLimitError):
        return _limit_error(err, source, shift)
    word = err.token.value if err.token is not None else ""
    if isinstance(err, UnknownFilterError):
        text = f"unknown filter '{word}'"
    elif isinstance(err, (FilterArgumentError, FilterValueError, FilterItemTypeError, FilterError)):
        text = f"invalid input or argument for filter '{word}'"
    elif isinstance(err, LiquidTypeError):
        text = f"incompatible value types at '{word}'"
    elif isinstance(err, LiquidValueError):
        text = "a number in the template is too long"
    elif isinstance(err, LiquidSyntaxError):  # e.g. `break` outside a loop: about the template, not data
        return _located(TemplateSyntaxError, err, str(err.message), source, shift)
    else:
        text = "the template could not be rendered"
    return _located(TemplateError, err, text, source, shift)


def _compile(source: str, shift: int = 0) -> BoundTemplate:
    template = _CACHE.get(source)
    if template is not None:
        return template
    try:
        template = _ENV.from_string(source)
    except LiquidError as err:
        raise _syntax_error(err, source, shift) from None
    for name, spans in template.analyze().filters.items():
        if name not in _ENV.filters:
            line, column = _position(source, spans[0].index, shift)
            raise TemplateSyntaxError(
                f"line {line}, column {column}: unknown filter '{name}'", line=line, column=column
            )
    _CACHE.put(source, template)
    return template


def _has_markup(source: str) -> bool:
    return "{{" in source or "{%" in source


def _render(source: str, context: Mapping[str, Any], limit: int, shift: int = 0) -> str:
    if not _has_markup(source):
        if len(source) > limit:
            raise TemplateLimitError(OUTPUT_LIMIT_MESSAGE)
        return source
    template = _compile(source, shift)
    render_context = SandboxContext(template, globals=template.make_globals(context))
    buffer = CharLimitedBuffer(limit=limit)
    try:
        template.render_with_context(render_context, buffer)
    except LiquidError as err:
        raise _render_error(err, source, shift) from None
    except RecursionError:
        raise TemplateLimitError(DEPTH_LIMIT_MESSAGE) from None
    except Exception as err:  # a filter's own failure (e.g. OverflowError); its text may quote a value
        raise TemplateError(f"the template could not be rendered ({type(err).__name__})") from None
    return buffer.getvalue()


def validate_template(source: str) -> None:
    """Parse `source` without rendering; raise TemplateSyntaxError (or TemplateLimitError) if it is unusable."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateLimitError(f"Template exceeds the size limit of {MAX_TEMPLATE_CHARS} characters")
    _compile(source)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render `source` against `context` within the sandbox limits."""
    return _render(source, context, MAX_OUTPUT_CHARS)


def render_config(config: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Render every string in `config` (nested dicts and lists too); the total output shares one size cap."""
    remaining = MAX_OUTPUT_CHARS

    def walk(value: Any, where: str) -> Any:
        nonlocal remaining
        if isinstance(value, str):
            try:
                text = _render(value, context, remaining)
            except TemplateError as err:
                raise type(err)(f"{where}: {err.message}", line=err.line, column=err.column) from None
            remaining -= len(text)
            return text
        if isinstance(value, Mapping):
            return {key: walk(item, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return value

    return dict(walk(config, ""))


def validate_config(config: Mapping[str, Any]) -> None:
    """Parse every string in an ActionConfig (nested too); errors are prefixed with the field's path."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            if _has_markup(value):
                try:
                    _compile(value)
                except TemplateError as err:
                    raise type(err)(f"{where}: {err.message}", line=err.line, column=err.column) from None
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    walk(config, "")


def _condition_source(expression: str) -> tuple[str, int]:
    if len(expression) > MAX_CONDITION_CHARS:
        raise TemplateLimitError(f"Condition exceeds the size limit of {MAX_CONDITION_CHARS} characters")
    if not expression.strip():
        raise TemplateSyntaxError("line 1, column 1: the condition is empty", line=1, column=1)
    if _has_markup(expression):
        return expression, 0
    if "%}" in expression or "}}" in expression:
        raise TemplateSyntaxError(
            "line 1, column 1: a bare condition cannot contain '%}' or '}}'", line=1, column=1
        )
    return f"{_CONDITION_PREFIX}{expression}{_CONDITION_SUFFIX}", len(_CONDITION_PREFIX)


def validate_condition(expression: str) -> None:
    """Raise TemplateSyntaxError/TemplateLimitError unless `expression` is a usable step condition."""
    source, shift = _condition_source(expression)
    _compile(source, shift)


def evaluate_condition(expression: str, context: Mapping[str, Any]) -> tuple[bool, str]:
    """Evaluate a step condition: a bare Liquid expression (`call.priority >= 2`) or a template.

    Returns (passed, output). The step is skipped when the trimmed output is empty or "false" (any case).
    """
    source, shift = _condition_source(expression)
    output = _render(source, context, MAX_OUTPUT_CHARS, shift).strip()
    return output != "" and output.lower() != "false", output


def clear_cache() -> None:
    """Forget every compiled template (for tests and benchmarks)."""
    _CACHE.clear()
