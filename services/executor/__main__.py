"""python -m services.executor"""

from __future__ import annotations

import asyncio

from services.executor.service import ExecutorService
from shared.config import get_settings
from shared.logging import configure_logging
from shared.service_main import run_service
from shared.tracing import setup_tracing


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, service="executor")
    setup_tracing("executor", settings)
    asyncio.run(run_service(ExecutorService(settings)))


if __name__ == "__main__":
    main()
