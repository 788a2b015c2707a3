"""The import temp directory (setting ``import_tmp``): each process writes under a folder of its
own (``p<pid>``); what a killed process left is removed when the next one starts.

Kept apart from :mod:`quarters.safefiles` so that the CLI can tidy up on start without
loading GDAL and pandas."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def process_tmp(tmp: Path) -> Path:
    """This process' own folder under the import temp directory (``p<pid>``)."""
    folder = tmp / f"p{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def remove_stale(tmp: Path) -> int:
    """Remove what dead processes left in the import temp directory (a killed import's files);
    folders of running processes (other workers) stay. Return the number of entries removed."""
    tmp.mkdir(parents=True, exist_ok=True)
    removed = 0
    for entry in tmp.iterdir():
        if entry.is_dir() and not entry.is_symlink() and _alive(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed += 1
    return removed


def _alive(folder: str) -> bool:
    if not (folder.startswith("p") and folder[1:].isascii() and folder[1:].isdigit()):
        return False
    pid = int(folder[1:])
    if pid == os.getpid():
        return False  # called on start: nothing of this process is in progress yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_quietly(path: Path) -> None:
    """Delete a temp file if it is still there."""
    with contextlib.suppress(OSError):
        os.unlink(path)
