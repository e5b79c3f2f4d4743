"""What the API builds at start-up (in the lifespan) and hands to requests."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.workflows.lists import WorkflowLists
from shared.auth import TokenVerifier
from shared.config import Settings
from shared.crypto import Keyring
from shared.db.engine import StatementPool


@dataclass
class ApiState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    reads: StatementPool  # single read-only statements, no transaction (shared.db.engine.read_value)
    lists: WorkflowLists  # the encoded workflow lists, checked against the database per request
    producer: AIOKafkaProducer
    verifier: TokenVerifier
    keyring: Keyring
