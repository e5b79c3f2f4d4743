"""Fetched record batches that cannot be read become records of their own instead of an exception.

aiokafka decodes a fetched batch while ``getmany()`` hands out its records; a batch it cannot read (a
codec it has no library for, a CRC mismatch, a corrupt record) raises out of ``getmany()`` on every
call, at the same offset, for ever: one such batch halts its partition (and, uncaught, the process).
With :func:`install`, each unreadable stretch of a batch is returned instead as one
:class:`UndecodableRecord` (no key or value; its first and last offset and the reason), the
consumer's position moves past it, and the records before and after it are returned as usual. The
consumer loops dead-letter it with its partition and offsets, so an operator can find it again.

This wraps aiokafka's ``PartitionRecords`` (its fetch-result iterator, internal API): the version
range in pyproject.toml is the one the tests in tests/kafka/ exercise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiokafka.consumer.fetcher as _fetcher
from aiokafka.structs import ConsumerRecord, TopicPartition

_original_partition_records: Any = _fetcher.PartitionRecords


@dataclass
class UndecodableRecord(ConsumerRecord[bytes, bytes]):  # type: ignore[misc]
    """Offsets ``offset`` to ``last_offset`` of a partition that could not be decoded."""

    last_offset: int = -1
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Unreadable:
    offset: int
    last_offset: int
    reason: str


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class _GuardedBatch:
    """A record batch whose iteration ends in an :class:`_Unreadable` instead of raising."""

    def __init__(self, batch: Any, owner: Any) -> None:
        self._batch = batch
        self._owner = owner
        self._crc_problem: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        try:
            if not self._batch.validate_crc():
                self._crc_problem = "corrupt record batch: CRC mismatch"
        except Exception as exc:
            self._crc_problem = f"corrupt record batch: {_describe(exc)}"
        return True  # reported by __iter__ as an unreadable stretch instead

    def __next__(self) -> Any:  # control batches (read_committed) are read record by record
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        start = max(self._batch.base_offset, self._owner.next_fetch_offset)
        last = self._batch.next_offset - 1
        if self._crc_problem is not None:
            yield _Unreadable(start, last, self._crc_problem)
            return
        seen: int | None = None
        try:
            for record in self._batch:
                seen = record.offset
                yield record
        except Exception as exc:
            first = start if seen is None else max(start, seen + 1)
            yield _Unreadable(first, max(first, last), _describe(exc))


class _GuardedRecords:
    """A fetch's batches, each guarded; a batch whose header cannot be read ends the fetch."""

    def __init__(self, records: Any, owner: Any) -> None:
        self._records = records
        self._owner = owner
        self._ended: _Unreadable | None = None
        self._done = False

    def has_next(self) -> bool:
        return not self._done and bool(self._records.has_next())

    def next_batch(self) -> Any:
        try:
            return _GuardedBatch(self._records.next_batch(), self._owner)
        except Exception as exc:
            # Where the broken batch ends is unknown: skip one offset; the next fetch starts after it.
            self._done = True
            offset = self._owner.next_fetch_offset
            return _UnreadableBatch(_Unreadable(offset, offset, f"corrupt record batch: {_describe(exc)}"))


class _UnreadableBatch:
    def __init__(self, unreadable: _Unreadable) -> None:
        self._unreadable = unreadable
        self.base_offset = unreadable.offset
        self.next_offset = unreadable.last_offset + 1
        self.producer_id = None
        self.is_control_batch = False
        self.is_transactional = False

    def validate_crc(self) -> bool:
        return True

    def __iter__(self) -> Iterator[_Unreadable]:
        yield self._unreadable


class GuardedPartitionRecords(_original_partition_records):  # type: ignore[misc]
    def __init__(self, tp: TopicPartition, records: Any, *args: Any) -> None:
        super().__init__(tp, _GuardedRecords(records, self), *args)

    def _consumer_record(self, tp: TopicPartition, record: Any) -> ConsumerRecord[bytes, bytes]:
        if isinstance(record, _Unreadable):
            return UndecodableRecord(
                tp.topic, tp.partition, record.offset, -1, 0, None, None, None, -1, -1, (),
                last_offset=record.last_offset, reason=record.reason,
            )  # fmt: skip
        return super()._consumer_record(tp, record)  # type: ignore[no-any-return,unused-ignore]


def install() -> None:
    """Make every consumer of this process return unreadable batches as :class:`UndecodableRecord`."""
    _fetcher.PartitionRecords = GuardedPartitionRecords
