"""A python-liquid Environment locked down for untrusted templates.

The library's own limits do most of the work (block nesting at parse time, loop length products, output
stream size, local namespace size); the subclasses below close what they leave open:
- loop iterations are also counted across the whole render, so sequential loops share one budget;
- a `reversed` loop is refused before python-liquid materialises its items into a list;
- output is counted in characters, and every render has a wall-clock budget;
- `include` and `render` fail at parse time, and no loader can reach a file system.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from io import StringIO
from typing import Any, TextIO

from liquid import BoundTemplate, DictLoader, Environment, Mode, RenderContext
from liquid.ast import Node
from liquid.builtin.expressions import LoopExpression
from liquid.builtin.tags.for_tag import ForLoop, ForNode, ForTag
from liquid.builtin.tags.tablerow_tag import TableRow, TablerowNode, TablerowTag
from liquid.exceptions import (
    LiquidSyntaxError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.output import LimitedStringIO
from liquid.stream import TokenStream
from liquid.tag import Tag

from .filters import guard_filters
from .limits import (
    MAX_LOCALS_BYTES,
    MAX_LOOP_ITERATIONS,
    MAX_NESTING_DEPTH,
    MAX_OUTPUT_CHARS,
    RENDER_TIME_LIMIT_SECONDS,
)


class _StepDeadline(threading.local):
    value: float | None = None


# The monotonic deadline of the step whose templates this thread renders (set by budget.StepBudget):
# every render of the step stops there, whatever is left of its own RENDER_TIME_LIMIT_SECONDS.
step_deadline = _StepDeadline()


class RenderTimeLimitError(ResourceLimitError):
    """The render ran past RENDER_TIME_LIMIT_SECONDS."""


class CharLimitedBuffer(LimitedStringIO):
    """An output buffer that counts characters (the library counts UTF-8 bytes)."""

    def write(self, s: str, /) -> int:
        if s:
            self.size += len(s)
            if self.size > self.limit:
                raise OutputStreamLimitError("output stream limit reached", token=None)
        return StringIO.write(self, s)


class SandboxContext(RenderContext):
    """Render context with a per-render loop iteration budget and deadline."""

    __slots__ = ("deadline", "iterations")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iterations = 0
        self.deadline = time.monotonic() + RENDER_TIME_LIMIT_SECONDS
        if step_deadline.value is not None:
            self.deadline = min(self.deadline, step_deadline.value)

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderTimeLimitError("render time limit reached", token=None)

    @contextmanager
    def loop(self, namespace: Mapping[str, object], forloop: ForLoop | TableRow) -> Iterator[RenderContext]:
        forloop.it = self._metered(forloop.it)
        with super().loop(namespace, forloop) as context:
            yield context

    def _metered(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            self.iterations += 1
            if self.iterations > MAX_LOOP_ITERATIONS:
                raise LoopIterationLimitError("loop iteration limit reached", token=None)
            self.check_deadline()
            yield item

    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        # `capture` and `ifchanged` render into a side buffer: it may only use what the output has left.
        used = buf.size if isinstance(buf, LimitedStringIO) else 0
        limit = buf.limit if isinstance(buf, LimitedStringIO) else MAX_OUTPUT_CHARS
        return CharLimitedBuffer(limit=limit - used)


class SandboxTemplate(BoundTemplate):
    """A parsed template that renders with SandboxContext into a character-limited buffer."""

    context_class = SandboxContext

    def _get_buffer(self) -> StringIO:
        return CharLimitedBuffer(limit=MAX_OUTPUT_CHARS)


class _BoundedLoopExpression(LoopExpression):
    __slots__ = ()

    def _slice(
        self,
        it: Iterator[object],
        length: int,
        context: RenderContext,
        *,
        limit: int | None,
        offset: int | str | None,
    ) -> tuple[Iterator[object], int]:
        if self.reversed:
            # The library turns a reversed loop into a list before checking its length: a
            # `(1..100000000) reversed` would allocate gigabytes. Same arithmetic as LoopExpression._slice.
            key = f"{self.identifier}-{self.iterable}"
            start = context.stopindex(key) if offset == "continue" else int(offset or 0)
            stop = None if limit is None else limit + start
            if min(stop or length, length) - min(max(start, 0), length) > MAX_LOOP_ITERATIONS:
                raise LoopIterationLimitError("loop iteration limit reached", token=None)
        return super()._slice(it, length, context, limit=limit, offset=offset)


class _ForTag(ForTag):
    def parse(self, stream: TokenStream) -> Node:
        node = super().parse(stream)
        if isinstance(node, ForNode):
            node.expression.__class__ = _BoundedLoopExpression
        return node


class _TablerowTag(TablerowTag):
    def parse(self, stream: TokenStream) -> TablerowNode:
        node = super().parse(stream)
        node.expression.__class__ = _BoundedLoopExpression
        return node


class _ForbiddenTag(Tag):
    block = False

    def parse(self, stream: TokenStream) -> Node:
        raise LiquidSyntaxError(
            f"the '{self.name}' tag is not allowed: templates cannot load other templates",
            token=stream.current,
        )


class _IncludeTag(_ForbiddenTag):
    name = "include"


class _RenderTag(_ForbiddenTag):
    name = "render"


class SandboxEnvironment(Environment):
    """Standard Liquid (no extra tags or filters) with the sandbox limits of docs/api-behaviour.md."""

    block_nesting_limit = MAX_NESTING_DEPTH
    # Each loop pushes one scope and a render starts with five: with include/render gone, block nesting
    # is the real depth limit and this one must never be the first to trip.
    context_depth_limit = MAX_NESTING_DEPTH + 8
    loop_iteration_limit = MAX_LOOP_ITERATIONS
    output_stream_limit = MAX_OUTPUT_CHARS
    local_namespace_limit = MAX_LOCALS_BYTES
    template_class = SandboxTemplate

    def __init__(self) -> None:
        super().__init__(loader=DictLoader({}), tolerance=Mode.STRICT, strict_filters=True, autoescape=False)

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        for tag in (_ForTag, _TablerowTag, _IncludeTag, _RenderTag):
            self.add_tag(tag)
        guard_filters(self)
