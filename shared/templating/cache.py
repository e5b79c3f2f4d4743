"""A small LRU for compiled templates, bounded by entry count and by the total size of their sources."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class TemplateCache(Generic[T]):
    """Least-recently-used map from template source text to its compiled form.

    A count bound alone would let a few tenants with 64 KB templates pin a lot of memory, so the total
    length of the cached sources is bounded too.
    """

    def __init__(self, *, max_entries: int, max_chars: int) -> None:
        self._items: OrderedDict[str, T] = OrderedDict()
        self._chars = 0
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, source: str) -> T | None:
        with self._lock:
            value = self._items.get(source)
            if value is not None:
                self._items.move_to_end(source)
            return value

    def put(self, source: str, value: T) -> None:
        if len(source) > self._max_chars:
            return
        with self._lock:
            if source in self._items:
                self._items.move_to_end(source)
                return
            self._items[source] = value
            self._chars += len(source)
            while len(self._items) > self._max_entries or self._chars > self._max_chars:
                evicted, _ = self._items.popitem(last=False)
                self._chars -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._chars = 0
