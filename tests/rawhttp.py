"""A real app process whose pid the test holds, and a raw HTTP client that can stop sending.

``conftest.serve_app`` hides its process; fault tests need to ``kill -9`` it. The raw client
sends a request head and then body parts one by one, and stops as soon as the server answers
(so a test can declare 400 MiB without allocating or sending them).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from conftest import free_port, wait_healthy
from quarters.settings import PROJECT_ROOT, Settings


@contextlib.contextmanager
def app_process(settings: Settings, **extra_env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start uvicorn with the app on 127.0.0.1; yield (process, base URL); stop it after."""
    port = free_port()
    env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_DATA_DIR": str(settings.data_dir), **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "quarters.api:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got to send before the answer came


def raw_request(url: str, head: str, parts: Iterable[bytes] = (), timeout: float = 30
                ) -> RawAnswer:
    """Send ``head`` (request line + headers, without the blank line) and the body ``parts``
    until the server answers; return the answer and how much of the body was sent."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sent = 0
    try:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n")
        for part in parts:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or closed): stop sending
            try:
                sock.sendall(part)
            except OSError:
                break
            sent += len(part)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data or not _complete(data):
            if time.monotonic() > deadline:
                break
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head_raw, _, body = data.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":")
                                                           for line in lines[1:])}
    return RawAnswer(status, headers, body, sent)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            return len(body) >= int(value.strip())
    return False
