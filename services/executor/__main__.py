"""python -m services.executor"""

from __future__ import annotations

from services.executor.service import ExecutorService
from shared.service_main import serve

if __name__ == "__main__":
    serve("executor", ExecutorService)
