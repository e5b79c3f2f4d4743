"""The side server's three answers: /livez (the loops), /readyz and /healthz (the dependencies)."""

from __future__ import annotations

import httpx

from shared.sidecar import SideServer
from wf.procs import free_port


async def test_a_dependency_outage_is_not_ready_but_alive():
    state = {"database": False, "consumer_loop": True}

    async def ready() -> dict[str, bool]:
        return dict(state)

    async def live() -> dict[str, bool]:
        return {"consumer_loop": state["consumer_loop"]}

    port = free_port()
    server = SideServer(ready, "127.0.0.1", port, live=live)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/livez")).status_code == 200
            for path in ("/readyz", "/healthz"):
                answer = await http.get(path)
                assert answer.status_code == 503
                assert answer.json()["checks"]["database"] is False
            state["database"] = True
            assert (await http.get("/readyz")).status_code == 200
            # A stalled loop is what liveness is for.
            state["consumer_loop"] = False
            assert (await http.get("/livez")).status_code == 503
            assert (await http.get("/metrics")).status_code == 200
    finally:
        await server.stop()
