"""python -m services.dispatcher"""

from __future__ import annotations

import asyncio

from services.dispatcher.service import DispatcherService
from shared.config import get_settings
from shared.logging import configure_logging
from shared.service_main import run_service
from shared.tracing import setup_tracing


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, service="dispatcher")
    setup_tracing("dispatcher", settings)
    asyncio.run(run_service(DispatcherService(settings)))


if __name__ == "__main__":
    main()
