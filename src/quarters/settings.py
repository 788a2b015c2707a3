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
    database_url: str | None = Field(None, description="External PostgreSQL/PostGIS server")
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
    statement_timeout_ms: int = 15000
    max_limit: int = 10000
    default_limit: int = 100
    max_body_bytes: int = 5 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    secure_cookies: bool = False  # set true behind HTTPS
    secret_key: str = Field("", description="salt for client hashes; random per process if empty")
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
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap-Mitwirkende"

    @field_validator("database_url")
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
