"""python -m services.dispatcher"""

from __future__ import annotations

from services.dispatcher.service import DispatcherService
from shared.service_main import serve

if __name__ == "__main__":
    serve("dispatcher", DispatcherService)
