"""python -m services.health"""

from __future__ import annotations

from services.health.service import HealthService
from shared.service_main import serve

if __name__ == "__main__":
    serve("health", HealthService)
