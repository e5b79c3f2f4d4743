"""Fetched bytes that cannot be decoded (CRC mismatch, a codec no library knows, a corrupt record)
come out of aiokafka's fetch iterator as one UndecodableRecord per unreadable stretch, between the
records around them, instead of an exception that would stop the partition."""

from __future__ import annotations

import struct

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from shared.kafka.undecodable import GuardedPartitionRecords, UndecodableRecord

TP = TopicPartition("workflows.events", 3)
# The v2 batch header: base offset (q), length (i), leader epoch (i), magic (b), CRC (I), attributes (h)...
CRC_AT = struct.calcsize(">qiib")
ATTRIBUTES_AT = struct.calcsize(">qiibI")


def batch(base: int, values: list[bytes]) -> bytearray:
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, 1_700_000_000_000, None, value, [])
    data = builder.build()
    struct.pack_into(">q", data, 0, base)
    return data


def with_codec(data: bytearray, codec: int) -> bytearray:
    """The batch claims ``codec`` in its attributes (with a valid CRC over the claim)."""
    attributes_at = ATTRIBUTES_AT
    (attributes,) = struct.unpack_from(">h", data, attributes_at)
    struct.pack_into(">h", data, attributes_at, attributes | codec)
    struct.pack_into(">I", data, CRC_AT, calc_crc32c(bytes(data[attributes_at:])))
    return data


def read(data: bytes, fetch_offset: int = 0) -> list[object]:
    records = GuardedPartitionRecords(TP, MemoryRecords(data), [], fetch_offset, None, None, True, 0)
    return list(records)


def summary(records: list[object]) -> list[object]:
    out: list[object] = []
    for r in records:
        if isinstance(r, UndecodableRecord):
            out.append(("undecodable", r.offset, r.last_offset))
        else:
            out.append((r.offset, r.value))  # type: ignore[attr-defined]
    return out


def test_crc_mismatch_is_one_record_between_the_readable_ones() -> None:
    corrupt = batch(3, [b"d", b"e"])
    corrupt[-1] ^= 0xFF
    data = bytes(batch(0, [b"a", b"b", b"c"]) + corrupt + batch(5, [b"f"]))
    records = read(data)
    assert summary(records) == [(0, b"a"), (1, b"b"), (2, b"c"), ("undecodable", 3, 4), (5, b"f")]
    bad = records[3]
    assert isinstance(bad, UndecodableRecord)
    assert bad.topic == TP.topic
    assert bad.partition == 3
    assert "CRC" in bad.reason
    assert bad.value is None
    assert bad.key is None


def test_unknown_codec_is_skipped_whole() -> None:
    data = bytes(batch(0, [b"a"]) + with_codec(batch(1, [b"b", b"c", b"d"]), 6) + batch(4, [b"e"]))
    records = read(data)
    assert summary(records) == [(0, b"a"), ("undecodable", 1, 3), (4, b"e")]
    assert "Unknown compression codec" in records[1].reason  # type: ignore[attr-defined]


def test_a_fetch_starting_inside_an_unreadable_batch_reports_from_there() -> None:
    corrupt = batch(0, [b"a", b"b", b"c", b"d"])
    corrupt[-1] ^= 0xFF
    records = read(bytes(corrupt + batch(4, [b"e"])), fetch_offset=2)
    assert summary(records) == [("undecodable", 2, 3), (4, b"e")]


def test_readable_batches_are_untouched() -> None:
    records = read(bytes(batch(0, [b"a", b"b"]) + batch(2, [b"c"])))
    assert summary(records) == [(0, b"a"), (1, b"b"), (2, b"c")]
