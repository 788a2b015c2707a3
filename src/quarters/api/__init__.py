"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy import Engine

from quarters import __version__
from quarters.api import ogc_openapi
from quarters.api.dataversion import FileCounter, listen_conninfo, make_watch
from quarters.api.errors import CatchAll, add_exception_handlers
from quarters.api.fastread import FastFeatureReads
from quarters.api.guard import RequestGuard
from quarters.api.limits import add_body_limits
from quarters.api.methods import Methods
from quarters.api.openapi import install as install_openapi
from quarters.api.pages import WebFiles
from quarters.api.responses import PROBLEM_RESPONSES
from quarters.api.routes import (
    analysis,
    auth,
    editions,
    features,
    features_write,
    ideas,
    measure_files,
    measures,
    meta,
    monitoring,
    places,
    public,
    tiles,
)
from quarters.api.security import SecurityHeaders
from quarters.api.vendor import VendorFiles
from quarters.auth import set_parallel_checks
from quarters.db import make_async_pool, make_engine
from quarters.importtmp import remove_stale
from quarters.settings import Settings, get_settings


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the lifespan owns the engine unless one is handed in."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = engine is None
        remove_stale(settings.import_tmp)  # what a killed import left behind
        app.state.engine = engine or make_engine(settings, role="app")
        replica = settings.read_database_url
        app.state.read_engine = (make_engine(settings, url=replica) if replica
                                 else app.state.engine)
        # the async read path (OGC items/item): the primary, and the replica for the public
        primary = make_async_pool(settings)
        app.state.pools = {"primary": primary,
                           "read": make_async_pool(settings, replica) if replica else primary}
        for pool in {id(p): p for p in app.state.pools.values()}.values():
            await pool.open()
        # the data version in memory (quarters.api.dataversion), told of bumps by NOTIFY
        app.state.version_watch = watch = make_watch(settings)
        listener = (asyncio.create_task(watch.listen(listen_conninfo(settings)))
                    if watch.enabled else None)
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with suppress(asyncio.CancelledError):
                    await listener
            if isinstance(watch.counter, FileCounter):
                watch.counter.close()
            for pool in {id(p): p for p in app.state.pools.values()}.values():
                await pool.close()
            if replica:
                app.state.read_engine.dispose()
            if owned:
                app.state.engine.dispose()

    app = FastAPI(
        title="quarters",
        version=__version__,
        description="Quartiere, Stadtviertel und Maßnahmen der Smart Cities Halle (Saale) und Gera",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    fastapi_openapi = app.openapi
    app.openapi = lambda: ogc_openapi.with_collection_paths(
        ogc_openapi.validation_is_400(fastapi_openapi()))
    set_parallel_checks(settings.login_parallel)
    if engine is not None:
        app.state.engine = engine
    add_exception_handlers(app)
    routers = (meta, features, tiles, features_write, auth, measure_files, measures, editions, ideas,
               public, places, analysis, monitoring)
    for module in routers:
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    install_openapi(app)
    if settings.fast_reads:  # innermost: every other layer still applies to its answers
        app.add_middleware(FastFeatureReads)
    # innermost first: the limits', the guard's and the catch-all's answers get the security
    # headers too
    add_body_limits(app, settings.max_body_bytes, settings.max_upload_bytes)
    app.add_middleware(RequestGuard)
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders, tile_url=settings.tile_url)
    # Only large answers, only when the client asks; level 1 keeps the CPU cost small.
    app.add_middleware(GZipMiddleware, minimum_size=64_000, compresslevel=1)
    # HEAD and OPTIONS for every route, CORS for reads: outside the others, before the static mount
    app.add_middleware(Methods, routes=app.router.routes, origins=settings.cors_origins)
    if (settings.web_dir / "node_modules").is_dir():  # only the files the pages load
        app.mount("/vendor", VendorFiles(settings.web_dir), name="vendor")
    if settings.web_dir.is_dir():
        app.mount("/", WebFiles(settings.web_dir), name="web")
    return app
