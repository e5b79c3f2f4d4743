"""`wf dlq list` / `wf dlq replay`: what is in the dead-letter topic, and putting it back once fixed.

A letter is replayed to the topic it came from (``wf-original-topic``: for the dispatcher's letters,
``workflows.events``) with its original key and headers. A letter without bytes (an undecodable
stretch of a batch) is replayed by reading those offsets of the original topic again, which works
once the cause is fixed (e.g. the codec library installed) and while the topic still retains them.
Replaying is safe to repeat: runs are unique per (workflow, EventId). The dead-letter topic is a log,
so replayed letters stay in it; ``--since`` selects the newer ones.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from shared.config import Settings
from shared.kafka import dead_letter as dl
from shared.kafka.clients import create_admin, create_producer, create_reader
from shared.kafka.undecodable import UndecodableRecord

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d`` (ago) or an ISO 8601 time (UTC when no offset is given)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip().lower())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration (30m, 2h, 7d) or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Letter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode(errors="replace")
        return None

    @property
    def code(self) -> str:
        return self.header(dl.CODE) or "unknown"

    @property
    def reason(self) -> str:
        return self.header(dl.REASON) or ""

    @property
    def original_topic(self) -> str | None:
        return self.header(dl.ORIGINAL_TOPIC)

    def original_range(self) -> tuple[int, int, int] | None:
        """(partition, first offset, last offset) in the original topic."""
        try:
            partition = int(self.header(dl.ORIGINAL_PARTITION) or "")
            first = int(self.header(dl.ORIGINAL_OFFSET) or "")
        except ValueError:
            return None
        last = self.header(dl.ORIGINAL_LAST_OFFSET)
        return partition, first, int(last) if last else first

    def envelope(self) -> dict[str, object]:
        """The event's department and type when the value is a JSON object that has them."""
        try:
            document = orjson.loads(self.value or b"")
        except orjson.JSONDecodeError:
            return {}
        return document if isinstance(document, dict) else {}

    def age(self, now_ms: int) -> str:
        seconds = max(0, (now_ms - self.timestamp_ms) // 1000)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    def matches(self, reason: str | None, since: datetime | None) -> bool:
        if since is not None and self.timestamp_ms < since.timestamp() * 1000:
            return False
        if reason is None:
            return True
        wanted = reason.lower()
        return wanted == self.code.lower() or wanted in self.reason.lower()


async def _read_all(settings: Settings, topic: str) -> list[Letter]:
    consumer = create_reader(settings)
    await consumer.start()
    try:
        partitions = sorted(await _partitions(settings, topic))
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        letters: list[Letter] = []
        waiting = {tp for tp in tps if ends[tp] > 0}
        while waiting:
            for tp, records in (await consumer.getmany(*waiting, timeout_ms=1000)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        letters.append(
                            Letter(
                                record.partition,
                                record.offset,
                                record.timestamp,
                                record.key,
                                record.value,
                                [(k, v) for k, v in record.headers if v is not None],
                            )
                        )
            waiting = {tp for tp in waiting if await consumer.position(tp) < ends[tp]}
        return letters
    finally:
        await consumer.stop()


async def _partitions(settings: Settings, topic: str) -> set[int]:
    admin = create_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = {int(p["partition"]) for d in described if d.get("error_code") == 0 for p in d["partitions"]}
    if not found:
        raise RuntimeError(f"the dead-letter topic {topic} does not exist (WF_TOPIC_DLQ)")
    return found


async def read_letters(
    settings: Settings, *, reason: str | None = None, since: datetime | None = None
) -> list[Letter]:
    return [x for x in await _read_all(settings, settings.topic_dlq) if x.matches(reason, since)]


def format_list(letters: Sequence[Letter], *, now_ms: int | None = None) -> str:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    rows = [("AGE", "CODE", "DEPARTMENT", "EVENT TYPE", "FROM", "REASON")]
    for letter in letters:
        envelope = letter.envelope()
        where = letter.original_range()
        origin = "-"
        if where is not None:
            partition, first, last = where
            offsets = f"{first}" if first == last else f"{first}-{last}"
            origin = f"{letter.original_topic}[{partition}]@{offsets}"
        rows.append(
            (
                letter.age(now_ms),
                letter.code,
                str(envelope.get("DepartmentId", "-")),
                str(envelope.get("EventType", "-")),
                origin,
                letter.reason[:100],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows
    ]
    counts: dict[str, int] = {}
    for letter in letters:
        counts[letter.code] = counts.get(letter.code, 0) + 1
    summary = ", ".join(f"{code} {n}" for code, n in sorted(counts.items())) or "none"
    return "\n".join([*lines, f"{len(letters)} dead letters ({summary})"])


@dataclass
class ReplayReport:
    replayed: int = 0  # messages produced back to their original topics
    skipped: list[str] = field(default_factory=list)  # why letters could not be replayed


class Progress:
    """A one-line progress bar on stderr (long replays)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self._shown = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        percent = 100 * self.done // self.total if self.total else 100
        if percent != self._shown:
            self._shown = percent
            filled = percent // 5
            bar = "#" * filled + "." * (20 - filled)
            print(f"\rreplaying [{bar}] {self.done}/{self.total}", end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.total:
            print(file=self.stream)


def _original_headers(letter: Letter) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in letter.headers if k not in dl.OURS]


async def _reread(settings: Settings, topic: str, partition: int, first: int, last: int) -> list[object]:
    """The records at offsets first..last of a partition, as the consumer reads them now."""
    consumer = create_reader(settings)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        if beginning > last:
            return []
        consumer.seek(tp, max(first, beginning))
        found: list[object] = []
        while await consumer.position(tp) <= last:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            if not batch:
                break
            found.extend(r for r in batch.get(tp, []) if first <= r.offset <= last)
        return found
    finally:
        await consumer.stop()


async def replay(
    settings: Settings,
    letters: Sequence[Letter],
    *,
    dry_run: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    report = ReplayReport()
    producer: AIOKafkaProducer | None = None if dry_run else create_producer(settings)
    if producer is not None:
        await producer.start()
    try:
        for letter in letters:
            topic = letter.original_topic
            where = letter.original_range()
            if topic is None:
                report.skipped.append(f"dlq offset {letter.offset}: no {dl.ORIGINAL_TOPIC} header")
            elif letter.value is not None:
                report.replayed += 1
                if producer is not None:
                    await producer.send_and_wait(
                        topic, letter.value, key=letter.key, headers=_original_headers(letter)
                    )
            elif letter.code == "undecodable" and where is not None:
                records = await _reread(settings, topic, *where)
                readable = [r for r in records if not isinstance(r, UndecodableRecord)]
                if not records or len(readable) < len(records):
                    report.skipped.append(
                        f"{topic}[{where[0]}]@{where[1]}-{where[2]}: "
                        f"{len(records) - len(readable)} still unreadable, "
                        f"{where[2] - where[1] + 1 - len(records)} no longer retained (or compacted)"
                    )
                for record in readable:
                    report.replayed += 1
                    if producer is not None:
                        await producer.send_and_wait(
                            topic,
                            record.value,  # type: ignore[attr-defined]
                            key=record.key,  # type: ignore[attr-defined]
                            headers=list(record.headers),  # type: ignore[attr-defined]
                        )
            else:
                report.skipped.append(f"dlq offset {letter.offset}: no value to replay ({letter.code})")
            if on_progress is not None:
                on_progress(1)
    finally:
        if producer is not None:
            await producer.stop()
    return report
