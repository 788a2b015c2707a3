"""The FastAPI application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from quarters import __version__
from quarters.api import ogc_openapi
from quarters.api.errors import add_exception_handlers
from quarters.api.methods import Methods
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
    public,
    tiles,
)
from quarters.api.security import SecurityHeaders
from quarters.auth import set_parallel_checks
from quarters.db import make_engine
from quarters.settings import Settings, get_settings


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the lifespan owns the engine unless one is handed in."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = engine is None
        app.state.engine = engine or make_engine(settings, role="app")
        try:
            yield
        finally:
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
    app.include_router(meta.router)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(features_write.router)
    app.include_router(auth.router)
    app.include_router(measure_files.router)
    app.include_router(measures.router)
    app.include_router(editions.router)
    app.include_router(ideas.router)
    app.include_router(public.router)
    app.include_router(analysis.router)
    app.add_middleware(SecurityHeaders, tile_url=settings.tile_url)
    # Only large answers, only when the client asks; level 1 keeps the CPU cost small.
    app.add_middleware(GZipMiddleware, minimum_size=64_000, compresslevel=1)
    # HEAD and OPTIONS for every route, CORS for reads: outside the others, before the static mount
    app.add_middleware(Methods, routes=app.router.routes, origins=settings.cors_origins)
    vendor = settings.web_dir / "node_modules"
    if vendor.is_dir():
        app.mount("/vendor", StaticFiles(directory=vendor), name="vendor")
    if settings.web_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web")
    return app
