"""Bounds of the analysis endpoints: a few analyses at a time per worker, a short queue, and a
statement timeout for their queries. A busy worker answers 503 with Retry-After at once instead
of holding a thread, a pooled connection and the CPU for minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg.errors import QueryCanceled
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from quarters.api.deps import ConnDep
from quarters.errors import ServiceBusy
from quarters.settings import Settings

RETRY_AFTER_S = 5


class Slots:
    """``slots`` analyses at a time, at most ``queue`` waiting (each at most ``wait_s``)."""

    def __init__(self, slots: int, queue: int, wait_s: float) -> None:
        self.free = asyncio.Semaphore(max(1, slots))
        self.queue, self.wait_s = max(0, queue), max(0.0, wait_s)
        self.waiting = 0

    async def acquire(self) -> None:
        """Take a slot or raise ServiceBusy (503) when none frees up in time."""
        if not self.free.locked():
            await self.free.acquire()
            return
        if self.waiting >= self.queue or self.wait_s <= 0:
            raise self._busy()
        self.waiting += 1
        try:
            await asyncio.wait_for(self.free.acquire(), timeout=self.wait_s)
        except TimeoutError:
            raise self._busy() from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        """Give the slot back."""
        self.free.release()

    @staticmethod
    def _busy() -> ServiceBusy:
        return ServiceBusy(code="analysis.busy",
                           headers={"Retry-After": str(RETRY_AFTER_S)})


async def analysis_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the worker's analysis slots for the request (taken before a connection)."""
    state = request.app.state
    slots = getattr(state, "analysis_slots", None)
    if slots is None:
        settings: Settings = state.settings
        slots = state.analysis_slots = Slots(settings.analysis_slots, settings.analysis_queue,
                                             settings.analysis_wait_s)
    await slots.acquire()
    try:
        yield
    finally:
        slots.release()


def analysis_conn(request: Request, _slot: Annotated[None, Depends(analysis_slot)],
                  conn: ConnDep) -> Iterator[Connection]:
    """The request's connection with the analysis statement timeout (SET LOCAL inside a
    transaction; on an autocommit connection set for the request and restored after)."""
    settings: Settings = request.app.state.settings
    ms = int(settings.analysis_timeout_ms)
    autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    conn.execute(text(f"SET {'' if autocommit else 'LOCAL '}statement_timeout = {ms}"))
    try:
        yield conn
    except OperationalError as exc:
        if isinstance(exc.orig, QueryCanceled):
            raise ServiceBusy(code="analysis.timeout", params={"ms": ms},
                              headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        raise
    finally:
        if autocommit and not conn.closed and not conn.invalidated:
            try:
                conn.execute(text(f"SET statement_timeout = {int(settings.statement_timeout_ms)}"))
            except OperationalError:
                conn.invalidate()  # a broken connection is not handed out again


AnalysisConnDep = Annotated[Connection, Depends(analysis_conn, scope="function")]
