"""Parsing events from the topic; anything unusable is a poison message for the dead-letter topic."""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from shared.kafka.dead_letter import DeadLetter, undecodable_letter
from shared.kafka.undecodable import UndecodableRecord
from shared.messages import TEST_WORKFLOW_HEADER, EventEnvelope
from shared.tracing import traceparent

# "\u0000" in JSON text, but not an escaped backslash followed by "u0000"
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    envelope: EventEnvelope
    payload_json: str
    traceparent: bytes | None = None  # W3C trace context of the producer, carried on to the run
    test_workflow_id: int | None = None  # set for the API's test events (TEST_WORKFLOW_HEADER)


# A poison message is a dead letter: the record, why, and a short code (shared/kafka/dead_letter.py).
PoisonMessage = DeadLetter


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "message"
        what = "is required" if err.get("type") == "missing" else str(err.get("msg", "is invalid"))
        parts.append(f"{where}: {what.removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_event(record: ConsumerRecord[bytes, bytes], max_bytes: int) -> ParsedEvent | PoisonMessage:
    if isinstance(record, UndecodableRecord):
        return undecodable_letter(record)
    value = record.value
    if value is None:
        return PoisonMessage(record, "the message has no value", "empty")
    if len(value) > max_bytes:
        return PoisonMessage(
            record, f"the message is {len(value)} bytes, over the {max_bytes}-byte limit", "too_large"
        )
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return PoisonMessage(record, f"not valid UTF-8 JSON: {exc}"[:300], "invalid_json")
    if not isinstance(document, dict):
        return PoisonMessage(record, "the message is not a JSON object", "invalid_shape")
    try:
        envelope = EventEnvelope.model_validate(document)
    except ValidationError as exc:
        return PoisonMessage(
            record, f"does not match the event envelope: {_describe(exc)}"[:500], "invalid_shape"
        )
    try:
        payload_json = orjson.dumps(envelope.Payload).decode()
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than the encoder's recursion limit
        return PoisonMessage(record, f"the payload cannot be stored: {exc}"[:300], "invalid_shape")
    # PostgreSQL text and jsonb cannot hold U+0000; one such event would otherwise fail its whole batch
    # again and again, and with it every event behind it.
    if "\x00" in envelope.EventId or ("\\u0000" in payload_json and _ESCAPED_NUL.search(payload_json)):
        return PoisonMessage(
            record, "the message contains a NUL character (U+0000), which cannot be stored", "invalid_content"
        )
    test_workflow_id = None
    for name, header in record.headers or ():
        if name == TEST_WORKFLOW_HEADER:
            text = header.decode("ascii", "replace") if header else ""
            if not text.isdigit() or not 0 < int(text) < 2**31:
                return PoisonMessage(
                    record, f"the {TEST_WORKFLOW_HEADER} header is not a workflow id", "invalid_shape"
                )
            test_workflow_id = int(text)
    return ParsedEvent(envelope, payload_json, traceparent(record.headers), test_workflow_id)
