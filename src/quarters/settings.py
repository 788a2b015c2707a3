"""Settings: every option is an environment variable with the prefix ``QUARTERS_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    max_body_bytes: int = 5 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
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
    secret_key: str = Field("", description="salt for client hashes; random per process if empty")
    idea_limit: int = Field(5, description="ideas one client may submit per window")
    idea_window_s: int = 3600
    trusted_proxies: str = Field(
        "", description="IPs/CIDRs of reverse proxies (comma-separated) whose X-Forwarded-For "
        "is believed; every other peer is the client itself")
    workshop_max_ideas: int = Field(200, description="ideas one workshop code may take")
    workshop_max_hours: int = Field(12, description="longest validity of a workshop code")
    near_max_radius_m: int = 10_000
    access_log: bool = Field(False, description="log every request (costs throughput)")
    cors_origins: list[str] = Field(
        ["*"], description="origins that may read the API from a browser (JSON list; '*' any); "
                           "never with credentials")
    cache_max_age: int = Field(0, description="max-age of OGC API reads in seconds; 0: clients "
                                              "revalidate every time (ETag → 304)")
    tile_cache_size: int = Field(4096, description="vector tiles kept in memory per worker "
                                                   "(LRU; 0: none)")
    tile_cache_dir: Path | None = Field(
        None, description="directory of a disk cache of vector tiles shared by workers (files "
                          "named by collection, grid, z/x/y and data version); unset: none")
    tile_max_age: int = Field(30, description="max-age of vector tiles in seconds (browsers and "
                                              "CDNs revalidate with the ETag afterwards)")
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap-Mitwirkende"

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str | None) -> str | None:
        """Normalise any PostgreSQL URL to the psycopg 3 driver."""
        if not value:
            return None
        for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        """Refuse a setting that is not a list of IPs/CIDRs (at start, not per request)."""
        from quarters.clients import parse_networks

        parse_networks(value)
        return value

    @property
    def trusted_networks(self) -> tuple:
        """The trusted proxies as ip_network objects."""
        from quarters.clients import parse_networks

        return parse_networks(self.trusted_proxies)

    @property
    def embedded(self) -> bool:
        """True when quarters runs its own PostgreSQL cluster."""
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (overridable in tests via dependency overrides)."""
    return Settings()
