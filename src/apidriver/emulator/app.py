"""The emulator's ASGI app: the routes of every host (the API and its sync host, storage, the
control API, a catch-all 404), the lifespan that runs the webhook dispatcher and the ticker, all
behind the middleware (:mod:`.middleware`)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from .api import api_routes, not_found_routes
from .control_api import control_routes
from .emulation import Emulation
from .middleware import ControlMiddleware
from .storage_host import storage_routes


def build_app(emu: Emulation) -> Any:
    b = emu.backend
    routes = api_routes(emu) + storage_routes(emu) + control_routes(emu) + not_found_routes()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await emu.dispatcher.start()
        ticker = asyncio.get_running_loop().create_task(emu.ticker())
        try:
            yield
        finally:
            ticker.cancel()
            await emu.dispatcher.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    return ControlMiddleware(app, emu.control, lambda key: key in emu.keys, clock=b.now, run_action=emu.run_action)
