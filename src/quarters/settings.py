"""Settings: every option is an environment variable with the prefix ``QUARTERS_``."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STORAGE_SRID = 25832  # ETRS89 / UTM zone 32N: official CRS in Sachsen-Anhalt and Thüringen
PROJECT_ROOT = Path(__file__).resolve().parents[2]

HALLE_AGS = "15002000"
GERA_AGS = "16052000"
PROJECT_CITIES = {HALLE_AGS: "Halle (Saale)", GERA_AGS: "Gera"}


class Settings(BaseSettings):
    """Runtime configuration of quarters."""

    model_config = SettingsConfigDict(env_prefix="QUARTERS_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".quarters"), description="Working directory of the embedded database")
    database_url: str | None = Field(
        None, description="External PostgreSQL/PostGIS server, as the owner role (migrations, loads)")
    app_database_url: str | None = Field(
        None, description="The same server as the runtime role the API connects as (least privilege); "
                          "unset: the embedded cluster's runtime role, or database_url")
    read_database_url: str | None = Field(
        None, description="A read replica (streaming replication) as the runtime role: anonymous "
                          "reads (GET/HEAD without a session) go there; unset: the primary")
    db_port: int = Field(54329, description="Port of the embedded cluster on 127.0.0.1")
    data_dir: Path = Field(
        PROJECT_ROOT.parent / "shared" / "data", description="Directory with third-party data"
    )
    geo_dir: Path = Field(PROJECT_ROOT / "data" / "geo", description="Project-authored data")
    catalogue: Path = Field(PROJECT_ROOT / "data" / "sources.toml")
    web_dir: Path = Field(PROJECT_ROOT / "web")
    host: str = "127.0.0.1"
    port: int = 8000
    pool_min: int = 2
    pool_max: int = 10
    pool_timeout_s: float = Field(10.0, description="wait for a pooled connection, then 503")
    statement_timeout_ms: int = 15000
    max_limit: int = 10000
    default_limit: int = 100
    max_body_bytes: int = Field(5 * 1024 * 1024, description="largest JSON body (413 beyond)")
    max_upload_bytes: int = Field(50 * 1024 * 1024, description="largest upload body (413)")
    max_import_bytes: int = Field(
        200 * 1024 * 1024, description="largest file an import reads (a zip: its unpacked size)")
    max_import_layers: int = Field(20, description="layers a GeoPackage may hold")
    max_import_features: int = Field(200_000, description="features (rows) per imported file")
    max_import_vertices: int = Field(20_000_000, description="vertices per imported file")
    max_zip_members: int = Field(20, description="files a zipped shapefile may hold")
    tmp_dir: Path | None = Field(None, description="temp files of imports (default HOME/tmp); "
                                 "emptied when the app or the CLI starts")
    secure_cookies: bool | None = Field(
        None, description="Secure flag of the session cookie; unset: secure unless the app serves "
                          "plain HTTP on a loopback address")
    session_lifetime_s: int = Field(12 * 3600, description="a session ends this long after sign-in")
    session_idle_s: int = Field(30 * 60, description="a session ends after this long unused")
    login_max_failures: int = Field(5, description="failed sign-ins of one account before a pause")
    login_client_max_failures: int = Field(20, description="failed sign-ins from one client "
                                                           "(any account) before a pause")
    login_window_s: int = Field(900, description="failures are forgotten this long after the last "
                                                 "one (or after the pause)")
    login_lock_s: int = Field(30, description="first pause; it doubles with each further failure")
    login_lock_max_s: int = Field(900, description="longest pause")
    login_parallel: int = Field(4, description="password checks (argon2, 64 MiB each) at once per "
                                               "worker")
    secret_key: str = Field("", description="salt for client hashes; empty: derived from the "
                                            "runtime role's password, or (embedded cluster) a "
                                            "random key in the home directory")
    idea_limit: int = Field(5, description="ideas one client may submit per window")
    idea_window_s: int = 3600
    trusted_proxies: str = Field(
        "", description="IPs/CIDRs of reverse proxies (comma-separated) whose X-Forwarded-For "
        "is believed; every other peer is the client itself")
    workshop_max_ideas: int = Field(200, description="ideas one workshop code may take")
    workshop_max_hours: int = Field(12, description="longest validity of a workshop code")
    near_max_radius_m: int = 10_000
    monitoring_due_days: int = Field(90, ge=1, le=3650,
                                     description="milestones due within this many days")
    monitoring_months: int = Field(36, ge=1, le=240,
                                   description="months of status history in monitoring")
    access_log: bool = Field(False, description="log every request (costs throughput)")
    cors_origins: list[str] = Field(
        ["*"], description="origins that may read the API from a browser (JSON list; '*' any); "
                           "never with credentials")
    cache_max_age: int = Field(0, description="max-age of OGC API reads in seconds; 0: clients "
                                              "revalidate every time (ETag → 304)")
    # analysis on the public API (quarters.api.routes.analysis)
    analysis_max_runs: int = Field(500, description="sensitivity runs per analysis request")
    analysis_max_top: int = Field(500, description="ranking rows per analysis request")
    analysis_max_units: int = Field(12_000, description="candidate units per analysis request")
    analysis_max_ward_units: int = Field(
        2_000, description="units of an agglomerative (Ward) typology: its memory grows with the "
        "square of the units; larger levels need k-means")
    analysis_slots: int = Field(1, description="analyses running at a time per worker")
    analysis_queue: int = Field(3, description="analyses waiting for a slot per worker; "
                                "more get 503")
    analysis_wait_s: float = Field(5.0, description="longest wait for a slot before 503")
    analysis_timeout_ms: int = Field(10_000, description="statement timeout of analysis queries")
    # the HTTP server (quarters serve)
    server_limit_concurrency: int = Field(200, description="connections + tasks before 503")
    server_keep_alive_s: int = Field(5, description="idle keep-alive connections are closed")
    server_backlog: int = Field(256, description="pending TCP connections")
    server_header_timeout_s: float = Field(
        10.0, description="a request's line and headers must arrive within this time")
    server_max_header_bytes: int = Field(64 * 1024, description="request line + headers")
    page_cache_bytes: int = Field(32 * 1024 * 1024, ge=0, description="bodies of OGC API "
                                  "reads kept in memory per worker for the current data "
                                  "version (0 = off)")
    data_version_check: Literal["auto", "request"] = Field(
        "auto", description="how a read learns the data version: auto = kept in memory (shared "
        "by the workers of one `quarters serve`, told of other writers by NOTIFY; see README, "
        "Scaling out), request = read from the database on every request (always so with a "
        "read replica)")
    version_file: Path | None = Field(
        None, description="internal: the file through which the workers of one `quarters serve` "
                          "share the data version (set by `quarters serve --workers N`)")
    fast_reads: bool = Field(True, description="answer anonymous GETs of one OGC feature on a "
                             "lean path in front of the routes (same answers; off: the routes)")
    tile_cache_size: int = Field(4096, description="vector tiles kept in memory per worker "
                                                   "(LRU; 0: none)")
    tile_cache_dir: Path | None = Field(
        None, description="directory of a disk cache of vector tiles shared by workers (files "
                          "named by collection, grid, z/x/y and data version); unset: none")
    tile_max_age: int = Field(30, description="max-age of vector tiles in seconds (browsers and "
                                              "CDNs revalidate with the ETag afterwards)")
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap-Mitwirkende"
    geocoder_url: str | None = Field(
        None, description="Nominatim-compatible search URL (e.g. https://nominatim.example/search) "
                          "the place search also asks when the database has few places; unset: "
                          "the search stays offline")

    lang: Literal["de", "en"] | None = Field(
        None, description="language of the CLI's messages and reports (de or en); unset: LANG "
                          "of the environment when it is German or English, else German")

    @field_validator("lang", mode="before")
    @classmethod
    def _language_code(cls, value: object) -> object:
        """``en_GB.UTF-8`` and ``EN`` count as ``en``; empty as unset."""
        if isinstance(value, str):
            return value.strip().lower()[:2] or None
        return value

    @field_validator("database_url", "app_database_url", "read_database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str | None) -> str | None:
        """Normalise any PostgreSQL URL to the psycopg 3 driver."""
        if not value:
            return None
        for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("geocoder_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """A geocoder is an http(s) URL (or unset)."""
        if value and not value.startswith(("http://", "https://")):
            from quarters.validation import custom_error

            raise custom_error("settings.geocoder_url", {"value": value[:200]})
        return value or None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        """Refuse a setting that is not a list of IPs/CIDRs (at start, not per request)."""
        from quarters.clients import parse_networks
        from quarters.errors import InvalidValue
        from quarters.validation import custom_error

        try:
            parse_networks(value)
        except InvalidValue as exc:
            raise custom_error(exc.code, exc.params) from None
        return value

    @property
    def trusted_networks(self) -> tuple:
        """The trusted proxies as ip_network objects."""
        from quarters.clients import parse_networks

        return parse_networks(self.trusted_proxies)

    @property
    def import_tmp(self) -> Path:
        """The one directory that holds the temp files of imports."""
        return self.tmp_dir or self.home / "tmp"

    @property
    def embedded(self) -> bool:
        """True when quarters runs its own PostgreSQL cluster."""
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (overridable in tests via dependency overrides)."""
    return Settings()


@lru_cache(maxsize=8)
def _home_secret(home: Path) -> str:
    path = home / "secret.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        draft = home / f".secret.key.{os.getpid()}"
        draft.write_text(secrets.token_hex(32) + "\n")
        os.chmod(draft, 0o600)
        try:
            os.link(draft, path)  # atomic: the first worker's key wins, the others read it
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text().strip()


def client_secret(settings: Settings) -> str:
    """The key that salts client hashes (idea limits), the same in every worker and container:
    ``secret_key``; else, with an external database, one derived from the runtime role's
    password (what all API containers share, never stored in the database in clear); else
    (the embedded cluster, one host) a random key kept in the home directory."""
    if settings.secret_key:
        return settings.secret_key
    url = settings.app_database_url or settings.database_url
    if url:
        password = urlsplit(url).password or url
        return hmac.new(password.encode(), b"quarters client hash", hashlib.sha256).hexdigest()
    return _home_secret(settings.home.resolve())
