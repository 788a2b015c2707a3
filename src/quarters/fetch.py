"""Download catalogued datasets with pooch, check their sha256 and unpack zip archives.

Only datasets of the sources catalogue are ever downloaded, and only from their
``download_url``. A dataset without one is reported as ``manual`` together with where
and how to obtain it. A download whose checksum differs from the catalogued one is
refused: the error names the dataset and both checksums, and nothing is left behind.

Layout in the data directory: a plain file goes straight to its catalogued path; a zip
archive is kept in ``downloads/<dataset id>/`` (so a second run does not download it
again) and the catalogued members are moved to their catalogued paths.
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

import pooch
import requests
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from quarters.catalogue import Catalogue, Dataset, check_dataset, file_sha256
from quarters.errors import QuartersError
from quarters.messages import Note

FetchStatus = Literal["downloaded", "present", "manual", "skipped"]
DOWNLOADS_DIR = "downloads"
TIMEOUT_SECONDS = 60


class FetchError(QuartersError):
    """A download failed or was refused (wrong checksum, missing archive member, ...)."""

    title = "Download abgelehnt"


@dataclass(frozen=True)
class FetchResult:
    """What fetch did for one dataset, with notes for the user (written out by the CLI)."""

    dataset_id: str
    status: FetchStatus
    notes: tuple[Note, ...]
    paths: tuple[Path, ...] = ()
    landing_page: str | None = None
    obtain: str | None = None

    @property
    def key(self) -> str:
        """The dataset id (the catalogue's table name)."""
        return self.dataset_id

    @property
    def message(self) -> str:
        """The notes in English, one a line."""
        return "\n".join(str(note) for note in self.notes)


def fetch(
    catalogue: Catalogue,
    data_dir: Path | str,
    *,
    only: str | Iterable[str] | None = None,
    progress: bool = True,
) -> list[FetchResult]:
    """Fetch the catalogued datasets (or those named in ``only``) into ``data_dir``."""
    data_dir = Path(data_dir)
    datasets = catalogue.select(only)
    return [fetch_dataset(dataset, data_dir, progress=progress) for dataset in datasets]


def fetch_dataset(dataset: Dataset, data_dir: Path, *, progress: bool = True) -> FetchResult:
    """Fetch one dataset; files already present with matching checksums are not downloaded."""
    if dataset.base == "repository":
        return FetchResult(dataset.id, "skipped", (Note("fetch_in_repository", dataset=dataset.id),))
    if not dataset.files:
        return FetchResult(dataset.id, "skipped", (Note(
            "fetch_nothing_local", dataset=dataset.id, obtain=dataset.obtain or ""),))
    if _published_files_ok(dataset, data_dir):
        paths = tuple(data_dir / f for f in dataset.files)
        return FetchResult(dataset.id, "present", (Note("fetch_already_present",
                                                        dataset=dataset.id),), paths)
    if dataset.download_url is None:
        return _manual(dataset, data_dir)
    if dataset.unpack == "zip":
        paths = _fetch_zip(dataset, data_dir, progress=progress)
    else:
        paths = (_fetch_file(dataset, data_dir, progress=progress),)
    return FetchResult(dataset.id, "downloaded", (Note(
        "fetch_downloaded_from", dataset=dataset.id, url=dataset.download_url),), paths)


def _published_files_ok(dataset: Dataset, data_dir: Path) -> bool:
    """True when every published file is there and no catalogued checksum differs."""
    status = check_dataset(dataset, data_dir)
    published = [c for c in status.checks if c.path in dataset.files]
    return all(c.present and c.matches is not False for c in published)


def _manual(dataset: Dataset, data_dir: Path) -> FetchResult:
    """The result for a dataset that has to be obtained by hand."""
    notes = [Note("fetch_by_hand", dataset=dataset.id, name=dataset.name)]
    if dataset.landing_page:
        notes.append(Note("fetch_where", url=dataset.landing_page))
    if dataset.obtain:
        notes.append(Note("fetch_how", obtain=dataset.obtain))
    notes.append(Note("fetch_put_files", files=", ".join(dataset.files), dir=str(data_dir)))
    return FetchResult(
        dataset.id,
        "manual",
        tuple(notes),
        landing_page=dataset.landing_page,
        obtain=dataset.obtain,
    )


def _fetch_file(dataset: Dataset, data_dir: Path, *, progress: bool) -> Path:
    """Download a single-file dataset straight to its catalogued path."""
    target = data_dir / dataset.files[0]
    with _cleanup_on_error(target.parent):
        _retrieve(dataset, fname=target.name, path=target.parent, progress=progress)
    return target


def _fetch_zip(dataset: Dataset, data_dir: Path, *, progress: bool) -> tuple[Path, ...]:
    """Download a zip, unpack the catalogued members and move them to their catalogued paths."""
    archive_dir = data_dir / DOWNLOADS_DIR / dataset.id
    unpacked = archive_dir / "unpacked"
    archive_name = PurePosixPath(urlparse(dataset.download_url or "").path).name
    members = list(dataset.archive_members.values())
    with _cleanup_on_error(archive_dir):
        try:
            _retrieve(
                dataset,
                fname=archive_name or f"{dataset.id}.zip",
                path=archive_dir,
                progress=progress,
                processor=pooch.Unzip(members=members, extract_dir=str(unpacked)),
            )
            _check_members(dataset, unpacked)
        except FetchError:
            shutil.rmtree(archive_dir, ignore_errors=True)  # never reuse a refused archive
            raise
    placed = []
    for target, member in dataset.archive_members.items():
        destination = data_dir / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(unpacked / member, destination)
        placed.append(destination)
    shutil.rmtree(unpacked)
    return tuple(placed)


def _check_members(dataset: Dataset, unpacked: Path) -> None:
    """Refuse the archive unless every catalogued member is there with the catalogued sha256."""
    for target, member in dataset.archive_members.items():
        source = unpacked / member
        if not source.is_file():
            raise FetchError(code="fetch.no_member", params={
                "dataset": dataset.id, "member": member, "target": target})
        expected = dataset.files_sha256.get(target)
        received = file_sha256(source)
        if expected and received != expected:
            raise _mismatch(dataset, expected, received, what=member)


def _retrieve(dataset: Dataset, *, fname: str, path: Path, progress: bool, **kwargs: Any) -> Any:
    """Call pooch.retrieve and turn its errors into messages that name the dataset."""
    downloader = _RecordingDownloader(_progressbar(progress, dataset.id))
    expected = dataset.known_hash
    try:
        return pooch.retrieve(
            dataset.download_url,
            known_hash=expected,
            fname=fname,
            path=path,
            downloader=downloader,
            **kwargs,
        )
    except ValueError as exc:
        received = downloader.received_sha256
        if expected and received and received != expected:
            raise _mismatch(dataset, expected, received) from None
        raise FetchError(code="fetch.failed", params={
            "dataset": dataset.id, "reason": str(exc)[:300]}) from exc
    except zipfile.BadZipFile as exc:
        raise FetchError(code="fetch.not_zip", params={
            "dataset": dataset.id, "url": dataset.download_url, "reason": str(exc)[:300]}) from exc
    except requests.RequestException as exc:
        raise FetchError(code="fetch.unreachable", params={
            "dataset": dataset.id, "url": dataset.download_url, "reason": str(exc)[:300]}) from exc
    finally:
        downloader.close()


def _mismatch(dataset: Dataset, expected: str, received: str, *, what: str = "") -> FetchError:
    """A checksum mismatch, explained to someone who has never seen one."""
    member = {"code": "fetch.member", "params": {"member": what}} if what else ""
    return FetchError(code="fetch.mismatch", params={
        "dataset": dataset.id, "member": member, "expected": expected, "received": received,
        "url": dataset.download_url})


@contextmanager
def _cleanup_on_error(directory: Path) -> Iterator[None]:
    """Remove the directories a failed download created (and only those)."""
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        raise


class _RecordingDownloader:
    """pooch's HTTP downloader that remembers the sha256 of what it received."""

    def __init__(self, progressbar: bool | RichProgressBar) -> None:
        self.progressbar = progressbar
        self.received_sha256: str | None = None
        self._inner = pooch.HTTPDownloader(progressbar=progressbar, timeout=TIMEOUT_SECONDS)

    def __call__(self, url: str, output_file: str, pooch_obj: Any, check_only: bool = False) -> Any:
        result = self._inner(url, output_file, pooch_obj, check_only=check_only)
        if not check_only:
            self.received_sha256 = file_sha256(Path(output_file))
        return result

    def close(self) -> None:
        """Stop a rich progress display if one is running."""
        if isinstance(self.progressbar, RichProgressBar):
            self.progressbar.close()


def _progressbar(progress: bool, label: str) -> bool | RichProgressBar:
    """What pooch gets as progressbar: tqdm's (True) when installed, else a rich bar."""
    if not progress:
        return False
    if importlib.util.find_spec("tqdm") is not None:
        return True
    return RichProgressBar(label)


class RichProgressBar:
    """The tqdm-like object pooch accepts as progressbar (total, update, reset, close) on rich."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.total: int | None = None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        self._task: Any = None

    def _ensure_started(self) -> None:
        """Start the display on first use (pooch sets total before the first update)."""
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total or None)

    def update(self, amount: int) -> None:
        """Advance by ``amount`` bytes."""
        self._ensure_started()
        self._progress.update(self._task, advance=amount, total=self.total or None)

    def reset(self) -> None:
        """Go back to zero (pooch then sets the final size in one update)."""
        self._ensure_started()
        self._progress.reset(self._task, total=self.total or None)

    def close(self) -> None:
        """Stop the display; safe to call twice."""
        if self._task is not None:
            self._progress.stop()
