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
    near_max_radius_m: int = 10_000
    access_log: bool = Field(False, description="log every request (costs throughput)")
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

    @property
    def embedded(self) -> bool:
        """True when quarters runs its own PostgreSQL cluster."""
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (overridable in tests via dependency overrides)."""
    return Settings()
