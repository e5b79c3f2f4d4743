"""python -m services.api"""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from shared.config import get_settings
from shared.logging import configure_logging
from shared.tracing import setup_tracing


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, service="api")
    setup_tracing("api", settings)
    uvicorn.run(
        create_app(settings, metrics_port=settings.api_metrics_port),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
