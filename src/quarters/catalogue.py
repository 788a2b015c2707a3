"""The sources catalogue: which data the project uses, under which licence, from where.

The catalogue lives in ``data/sources.toml`` (one table per dataset, keyed by a short id).
This module reads and validates it, lists the attribution texts a map must show, and
checks a local data directory against the catalogued files and their sha256 checksums.

    >>> catalogue = load_catalogue()
    >>> statuses = check_local(catalogue, Path("../shared/data"))
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from rich.table import Table
from rich.text import Text

from quarters.errors import QuartersError, item, render_items
from quarters.messages import Note
from quarters.validation import custom_error, pydantic_items

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE = REPO_ROOT / "data" / "sources.toml"

State = Literal["ok", "unverified", "incomplete", "missing", "changed", "nothing stored"]


class CatalogueError(QuartersError):
    """The sources catalogue cannot be read or breaks a rule."""

    title = "Quellenkatalog fehlerhaft"

    def __str__(self) -> str:  # the head and one line per problem (logs, the CLI)
        return self.text("en") + "".join(f"\n- {e['problem']}"
                                         for e in render_items(self.errors, "en", self.code))


def _relative_path(value: str) -> str:
    """Accept only a relative POSIX path that stays inside its base directory."""
    path = PurePosixPath(value)
    if not value or "\\" in value or path.is_absolute() or ".." in path.parts:
        raise custom_error("catalogue.relative_path", {"value": value[:200]})
    return value


def _web_address(value: str) -> str:
    """Accept only http(s) addresses."""
    if not value.startswith(("https://", "http://")):
        raise custom_error("catalogue.web_address", {"value": value[:200]})
    return value


RelPath = Annotated[str, AfterValidator(_relative_path)]
WebAddress = Annotated[str, AfterValidator(_web_address)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NonEmpty = Annotated[str, Field(min_length=1)]


class Dataset(BaseModel):
    """One catalogued dataset (one table of data/sources.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: NonEmpty
    publisher: NonEmpty
    licence: NonEmpty
    licence_url: WebAddress
    attribution: NonEmpty
    attribution_derived: NonEmpty | None = None
    landing_page: WebAddress | None = None
    download_url: WebAddress | None = None
    obtain: NonEmpty | None = None
    sha256: Sha256 | None = None
    files: tuple[RelPath, ...] = ()
    derived_files: tuple[RelPath, ...] = ()
    files_sha256: dict[RelPath, Sha256] = {}
    unpack: Literal["zip"] | None = None
    archive_members: dict[RelPath, RelPath] = {}
    retrieved: date | None = None
    native_crs: NonEmpty | None = None
    provenance: NonEmpty | None = None
    note: NonEmpty | None = None
    base: Literal["data_dir", "repository"] = "data_dir"

    @field_validator("sha256", mode="before")
    @classmethod
    def _lowercase_hash(cls, value: Any) -> Any:
        """Accept checksums written in upper case."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("files_sha256", mode="before")
    @classmethod
    def _lowercase_hashes(cls, value: Any) -> Any:
        """Accept checksums written in upper case."""
        if isinstance(value, dict):
            return {k: v.lower() if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        """Check the rules that involve more than one key."""
        all_files = set(self.files) | set(self.derived_files)
        if not (self.landing_page or self.obtain):
            raise custom_error("catalogue.no_landing_page")
        if unknown := sorted(set(self.files_sha256) - all_files):
            raise custom_error("catalogue.sha256_unknown_files", {"files": ", ".join(unknown)})
        if unknown := sorted(set(self.archive_members) - set(self.files)):
            raise custom_error("catalogue.members_unknown_files", {"files": ", ".join(unknown)})
        if self.archive_members and self.unpack is None:
            raise custom_error("catalogue.members_need_zip")
        if self.download_url:
            self._check_downloadable()
        if self.sha256 and not self.unpack and len(self.files) == 1:
            listed = self.files_sha256.get(self.files[0])
            if listed and listed != self.sha256:
                raise custom_error("catalogue.sha256_disagree")
        return self

    def _check_downloadable(self) -> None:
        """Check that fetch knows where to put what download_url delivers."""
        if self.base == "repository":
            raise custom_error("catalogue.repository_download")
        if self.unpack is None and len(self.files) != 1:
            raise custom_error("catalogue.download_one_file", {"count": len(self.files)})
        if self.unpack == "zip" and (
            missing := sorted(set(self.files) - set(self.archive_members))
        ):
            raise custom_error("catalogue.members_missing", {"files": ", ".join(missing)})

    @property
    def all_files(self) -> tuple[str, ...]:
        """Published files followed by the files derived from them."""
        return self.files + self.derived_files

    @property
    def known_hash(self) -> str | None:
        """The sha256 to check the download against (None when unknown)."""
        if self.sha256:
            return self.sha256
        if self.unpack is None and len(self.files) == 1:
            return self.files_sha256.get(self.files[0])
        return None

    def root(self, data_dir: Path, repo_root: Path = REPO_ROOT) -> Path:
        """Directory the dataset's paths are relative to."""
        return repo_root if self.base == "repository" else data_dir


@dataclass(frozen=True)
class Catalogue:
    """All catalogued datasets, in file order."""

    datasets: dict[str, Dataset]
    path: Path | None = None

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self.datasets.values())

    def __len__(self) -> int:
        return len(self.datasets)

    def __contains__(self, dataset_id: object) -> bool:
        return dataset_id in self.datasets

    def __getitem__(self, dataset_id: str) -> Dataset:
        try:
            return self.datasets[dataset_id]
        except KeyError:
            raise CatalogueError(code="catalogue.unknown_dataset", pointer=str(dataset_id)[:80],
                                 params={"id": str(dataset_id)[:80],
                                         "known": ", ".join(self.ids)}) from None

    @property
    def ids(self) -> list[str]:
        """Dataset ids in file order."""
        return list(self.datasets)

    def select(self, only: str | Iterable[str] | None = None) -> list[Dataset]:
        """The datasets named in ``only`` (all when None); unknown ids are refused."""
        if only is None:
            return list(self)
        wanted = [only] if isinstance(only, str) else list(only)
        return [self[dataset_id] for dataset_id in wanted]


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read and validate the sources catalogue (default: the repository's data/sources.toml)."""
    path = Path(path) if path is not None else DEFAULT_CATALOGUE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(code="catalogue.not_found", params={"path": str(path)}) from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(code="catalogue.not_toml",
                             params={"path": str(path), "reason": str(exc)}) from None
    return parse_catalogue(raw, source=str(path), path=path)


def parse_catalogue(
    raw: dict[str, Any], *, source: str = "catalogue", path: Path | None = None
) -> Catalogue:
    """Validate already-parsed TOML data; every problem is reported in one error."""
    datasets: dict[str, Dataset] = {}
    problems: list[dict[str, Any]] = []
    for dataset_id, table in raw.items():
        if not isinstance(table, dict):
            problems.append(item(f"/{dataset_id}", "catalogue.not_a_table", dataset=dataset_id,
                                 type=type(table).__name__))
            continue
        if "id" in table:
            problems.append(item(f"/{dataset_id}/id", "catalogue.id_key", dataset=dataset_id))
            continue
        try:
            datasets[dataset_id] = Dataset.model_validate({"id": dataset_id, **table})
        except ValidationError as exc:
            problems.extend(_describe(dataset_id, exc))
    if problems:
        raise CatalogueError(code="catalogue.problems", errors=problems,
                             params={"source": source, "count": len(problems)})
    return Catalogue(datasets=datasets, path=path)


def _describe(dataset_id: str, exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as coded problems naming the dataset and the key."""
    allowed = ", ".join(name for name in Dataset.model_fields if name != "id")
    out = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        pointer = "/" + "/".join([dataset_id, *(str(p) for p in error["loc"])])
        coded = pydantic_items([error])[0]
        why = {"code": coded["code"], "params": coded["params"]}
        if error["type"] == "extra_forbidden":
            out.append(item(pointer, "catalogue.unknown_key", dataset=dataset_id, key=key,
                            allowed=allowed))
        elif error["type"] == "missing":
            out.append(item(pointer, "catalogue.missing_key", dataset=dataset_id, key=key))
        elif key:
            out.append(item(pointer, "catalogue.key_problem", dataset=dataset_id, key=key,
                            problem=why))
        else:
            out.append(item(pointer, "catalogue.dataset_problem", dataset=dataset_id,
                            problem=why))
    return out


def attribution_texts(
    catalogue: Catalogue, *, derived: bool = False, only: str | Iterable[str] | None = None
) -> list[str]:
    """Distinct attribution texts in catalogue order (``derived`` picks the changed-data form)."""
    texts: list[str] = []
    for dataset in catalogue.select(only):
        text = (dataset.attribution_derived if derived else None) or dataset.attribution
        if text not in texts:
            texts.append(text)
    return texts


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """One catalogued file as found (or not) on disk."""

    path: str
    location: Path
    present: bool
    expected_sha256: str | None
    actual_sha256: str | None

    @property
    def matches(self) -> bool | None:
        """True/False when both checksums are known, None otherwise."""
        if not self.present or self.expected_sha256 is None:
            return None
        return self.actual_sha256 == self.expected_sha256


@dataclass(frozen=True)
class Status:
    """What a local directory holds of one dataset."""

    dataset_id: str
    name: str
    root: Path
    checks: tuple[FileCheck, ...]
    downloadable: bool
    in_repository: bool = False

    @property
    def missing(self) -> list[str]:
        """Catalogued files that are not there."""
        return [c.path for c in self.checks if not c.present]

    @property
    def mismatched(self) -> list[str]:
        """Files whose checksum differs from the catalogued one."""
        return [c.path for c in self.checks if c.matches is False]

    @property
    def unverified(self) -> list[str]:
        """Files that are there but have no catalogued checksum."""
        return [c.path for c in self.checks if c.present and c.expected_sha256 is None]

    @property
    def files_present(self) -> bool:
        """True when every catalogued file is there."""
        return not self.missing

    @property
    def checksums_match(self) -> bool | None:
        """False if any checksum differs, True if all checked ones agree, None if none checked."""
        results = [c.matches for c in self.checks if c.matches is not None]
        if not results:
            return None
        return all(results)

    @property
    def state(self) -> State:
        """One word for the table: ok, unverified, incomplete, missing, changed, nothing stored."""
        if not self.checks:
            return "nothing stored"
        if self.mismatched:
            return "changed"
        if len(self.missing) == len(self.checks):
            return "missing"
        if self.missing:
            return "incomplete"
        if self.unverified:
            return "unverified"
        return "ok"

    @property
    def note(self) -> Note:
        """What the state means and what to do, for a newcomer (``warning.status_*``)."""
        where = str(self.root)
        match self.state:
            case "ok":
                return Note("status_ok", count=len(self.checks), where=where)
            case "nothing stored":
                return Note("status_nothing_stored")
            case "unverified":
                return Note("status_unverified", files=_few(self.unverified))
            case "changed":
                return Note("status_changed", files=_few(self.mismatched))
            case "missing" if self.in_repository:
                return Note("status_missing_repository", count=len(self.checks), where=where)
            case "missing" if self.downloadable:
                return Note("status_missing_fetch", count=len(self.checks), where=where)
            case "missing":
                return Note("status_missing_by_hand", count=len(self.checks), where=where)
            case _:
                return Note("status_incomplete", files=_few(self.missing), where=where)

    @property
    def summary(self) -> str:
        """:attr:`note` in English."""
        return str(self.note)


def _few(paths: list[str], limit: int = 3) -> str:
    """Short list of file names for messages (``a, b, c (+2)``)."""
    names = [PurePosixPath(p).name for p in paths[:limit]]
    more = f" (+{len(paths) - limit})" if len(paths) > limit else ""
    return ", ".join(names) + more


def check_local(
    catalogue: Catalogue, data_dir: Path | str, *, repo_root: Path = REPO_ROOT
) -> list[Status]:
    """For each dataset: are its files in ``data_dir`` and do their checksums match?"""
    return [check_dataset(dataset, Path(data_dir), repo_root=repo_root) for dataset in catalogue]


def check_dataset(dataset: Dataset, data_dir: Path, *, repo_root: Path = REPO_ROOT) -> Status:
    """Check one dataset's files against the catalogue."""
    root = dataset.root(data_dir, repo_root)
    checks = []
    for relative in dataset.all_files:
        location = root / relative
        present = location.is_file()
        checks.append(
            FileCheck(
                path=relative,
                location=location,
                present=present,
                expected_sha256=dataset.files_sha256.get(relative),
                actual_sha256=file_sha256(location) if present else None,
            )
        )
    return Status(
        dataset_id=dataset.id,
        name=dataset.name,
        root=root,
        checks=tuple(checks),
        downloadable=dataset.download_url is not None,
        in_repository=dataset.base == "repository",
    )


_STATE_KEYS = {"ok": "cli.state_ok", "unverified": "cli.state_unverified",
               "nothing stored": "cli.state_nothing_stored", "incomplete": "cli.state_incomplete",
               "missing": "cli.state_missing", "changed": "cli.state_changed"}
_STATE_STYLE = {
    "ok": "green",
    "unverified": "cyan",
    "nothing stored": "dim",
    "incomplete": "yellow",
    "missing": "yellow",
    "changed": "bold red",
}


def format_status_table(statuses: Iterable[Status], lang: str = "en") -> Table:
    """A rich table with one row per dataset: files found, state and what it means (headings,
    checksum verdicts and states in ``lang``, from the catalogue's ``cli.status_*`` keys)."""
    from quarters.messages import note_text, t

    table = Table(title=t("cli.status_title", lang), show_lines=False)
    table.add_column(t("cli.status_dataset", lang), style="bold", no_wrap=True)
    table.add_column(t("cli.status_files", lang), justify="right")
    table.add_column(t("cli.status_checksums", lang))
    table.add_column(t("cli.status_state", lang))
    table.add_column(t("cli.status_details", lang), overflow="fold")
    verdicts = {True: t("cli.status_match", lang), False: t("cli.status_differ", lang),
                None: "–"}
    for status in statuses:
        found = len(status.checks) - len(status.missing)
        style = _STATE_STYLE[status.state]
        table.add_row(
            Text(status.dataset_id),
            f"{found}/{len(status.checks)}",
            verdicts[status.checksums_match],
            Text(t(_STATE_KEYS[status.state], lang), style=style),
            Text(note_text(status.note, lang)),
        )
    return table
