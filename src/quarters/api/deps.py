"""Request dependencies: settings and a pooled database connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from quarters.errors import DatabaseUnavailable
from quarters.settings import Settings


def get_settings(request: Request) -> Settings:
    """Settings the app was created with."""
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection from the app's pool, returned after the request."""
    try:
        conn = request.app.state.engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailable("the database cannot be reached; try again shortly") from exc
    with conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[Connection, Depends(get_conn)]
