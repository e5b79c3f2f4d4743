"""The dead-letter topic: records a consumer cannot use, kept with why and where they came from.

Every consumer (dispatcher, executor, health) sends what it cannot read or use to the one topic
``WF_TOPIC_DLQ`` (``workflows.events.dlq``), with the original key, value and headers and these
headers of ours:

- ``wf-dlq-reason`` (text for people), ``wf-dlq-code`` (``undecodable``, ``too_large``, ``invalid_json``...)
- ``wf-original-topic``, ``-partition``, ``-offset``, ``-timestamp`` (where it was read)
- ``wf-original-last-offset`` when a whole stretch of a batch could not be decoded (no value then:
  the bytes are still in the original topic at those offsets until its retention removes them)
- ``wf-dlq-value-dropped`` when the value was too large for the dead-letter topic itself

A letter with neither key nor value (an undecodable stretch) is keyed ``<topic>/<partition>``.

``wf dlq replay`` puts a record back on its original topic (for the dispatcher's: ``workflows.events``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from shared.kafka.undecodable import UndecodableRecord
from shared.logging import get_logger

log = get_logger(__name__)

REASON = "wf-dlq-reason"
CODE = "wf-dlq-code"
ORIGINAL_TOPIC = "wf-original-topic"
ORIGINAL_PARTITION = "wf-original-partition"
ORIGINAL_OFFSET = "wf-original-offset"
ORIGINAL_LAST_OFFSET = "wf-original-last-offset"
ORIGINAL_TIMESTAMP = "wf-original-timestamp"
VALUE_DROPPED = "wf-dlq-value-dropped"
OURS = frozenset(
    (REASON, CODE, ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET, ORIGINAL_LAST_OFFSET)
    + (ORIGINAL_TIMESTAMP, VALUE_DROPPED)
)

DEAD_LETTERS = Counter(
    "wf_kafka_dead_letters_total", "Records sent to the dead-letter topic", ["topic", "code"]
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    code: str


def undecodable_letter(record: UndecodableRecord) -> DeadLetter:
    return DeadLetter(
        record,
        f"offsets {record.offset}-{record.last_offset} could not be decoded: {record.reason}",
        "undecodable",
    )


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    record = letter.record
    # The original headers first (trace context, content type...), minus any of ours from an earlier trip.
    headers = [(k, v) for k, v in record.headers if k not in OURS and v is not None]
    headers += [
        (REASON, letter.reason.encode()),
        (CODE, letter.code.encode()),
        (ORIGINAL_TOPIC, record.topic.encode()),
        (ORIGINAL_PARTITION, str(record.partition).encode()),
        (ORIGINAL_OFFSET, str(record.offset).encode()),
        (ORIGINAL_TIMESTAMP, str(record.timestamp).encode()),
    ]
    if isinstance(record, UndecodableRecord):
        headers.append((ORIGINAL_LAST_OFFSET, str(record.last_offset).encode()))
    return headers


async def send_dead_letters(producer: AIOKafkaProducer, topic: str, letters: Sequence[DeadLetter]) -> None:
    """Produce the letters and await their acknowledgements (the caller commits its offsets after)."""
    if not letters:
        return
    sent = []
    for letter in letters:
        record = letter.record
        log.warning(
            "record.dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            code=letter.code,
            reason=letter.reason,
        )
        sent.append((letter, asyncio.ensure_future(_send(producer, topic, letter, record.value))))
        DEAD_LETTERS.labels(record.topic, letter.code).inc()
    for letter, future in sent:
        try:
            await future
        except (MessageSizeTooLargeError, RecordTooLargeError):
            # Over the DLQ topic's own size limit: keep where it was instead of what it was.
            await _send(producer, topic, letter, None, dropped=True)


async def _send(
    producer: AIOKafkaProducer, topic: str, letter: DeadLetter, value: bytes | None, *, dropped: bool = False
) -> None:
    headers = dead_letter_headers(letter)
    if dropped:
        headers.append((VALUE_DROPPED, b"the value was too large for the dead-letter topic"))
    record = letter.record
    key = record.key
    if key is None and value is None:  # Kafka allows it, aiokafka does not: the partition it came from
        key = f"{record.topic}/{record.partition}".encode()
    await (await producer.send(topic, value=value, key=key, headers=headers))
