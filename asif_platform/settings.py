"""One settings object, read from ``ASIF_*`` environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from asif_platform.errors import ConfigError

__all__ = ["SETTINGS_HELP", "Settings"]


@dataclass(frozen=True)
class Settings:
    """Platform configuration; every field maps to one ``ASIF_*`` variable.

    Build it with :meth:`Settings.from_env`; tests build it directly.
    """

    home: Path = field(
        default=Path("asif-data"),
        metadata={"env": "ASIF_HOME", "help": "Data directory (embedded Qdrant, SQLite)."},
    )
    database_url: str | None = field(
        default=None,
        metadata={
            "env": "ASIF_DATABASE_URL",
            "help": "SQLAlchemy URL of the catalog; default sqlite:///$ASIF_HOME/catalog.db.",
        },
    )
    qdrant_url: str | None = field(
        default=None,
        metadata={
            "env": "ASIF_QDRANT_URL",
            "help": "Qdrant server URL (or ':memory:'); default embedded Qdrant Edge.",
        },
    )
    qdrant_api_key: str | None = field(
        default=None,
        metadata={"env": "ASIF_QDRANT_API_KEY", "help": "API key for the Qdrant server."},
    )
    image_encoder: str = field(
        default="bundled:efficientnet-lite0",
        metadata={
            "env": "ASIF_IMAGE_ENCODER",
            "help": "Default image encoder for new collections.",
        },
    )
    text_encoder: str = field(
        default="bundled:all-minilm-l6-v2",
        metadata={
            "env": "ASIF_TEXT_ENCODER",
            "help": "Default text encoder for new collections.",
        },
    )
    batch_size: int = field(
        default=64,
        metadata={"env": "ASIF_BATCH_SIZE", "help": "Encoder batch size."},
    )
    threads: int = field(
        default=0,
        metadata={
            "env": "ASIF_THREADS",
            "help": "CPU threads for encoders; 0 uses every core.",
        },
    )

    qdrant_shards: int | None = field(
        default=None,
        metadata={
            "env": "ASIF_QDRANT_SHARDS",
            "help": "Shards of each new collection on a Qdrant server or cluster; "
                    "default the server's (1).",
        },
    )
    qdrant_replication: int | None = field(
        default=None,
        metadata={
            "env": "ASIF_QDRANT_REPLICATION",
            "help": "Replicas of each shard of a new collection on a Qdrant cluster; "
                    "default the server's (1).",
        },
    )

    service_host: str = field(
        default="127.0.0.1",
        metadata={"env": "ASIF_SERVICE_HOST", "help": "Address `asif serve` listens on."},
    )
    service_port: int = field(
        default=8000,
        metadata={"env": "ASIF_SERVICE_PORT", "help": "Port `asif serve` listens on."},
    )
    service_data_root: Path | None = field(
        default=None,
        metadata={
            "env": "ASIF_SERVICE_DATA_ROOT",
            "help": "The only folder whose files HTTP requests may name (server-side "
                    "ingest, image paths); default none, so requests can only upload.",
        },
    )
    service_max_body_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={
            "env": "ASIF_SERVICE_MAX_BODY_BYTES",
            "help": "Largest HTTP request body accepted, in bytes (larger: 413).",
        },
    )
    service_max_images: int = field(
        default=64,
        metadata={
            "env": "ASIF_SERVICE_MAX_IMAGES",
            "help": "Most images one classify request may carry.",
        },
    )

    principal: str = field(
        default_factory=lambda: _default_principal(),
        metadata={
            "env": "ASIF_USER",
            "help": "The principal commands act as (or --as); default the OS user.",
        },
    )

    def __post_init__(self) -> None:
        if not _PRINCIPAL.match(self.principal):
            raise ConfigError(
                f"invalid principal name {self.principal!r} (ASIF_USER or --as): use 1-128 "
                "letters, digits and . _ @ + -, starting with a letter or digit"
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every ``ASIF_*`` variable, falling back to the documented default."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = environ.get(spec.metadata["env"])
            if raw is None or raw == "":
                continue
            values[spec.name] = _convert(spec.name, spec.metadata["env"], raw, spec.type)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def sqlalchemy_url(self) -> str:
        """The catalog URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'catalog.db').resolve()}"

    @property
    def qdrant_path(self) -> Path:
        """Where the embedded Qdrant Edge shards live."""
        return self.home / "qdrant"


_POSITIVE_INTS = frozenset({"batch_size", "qdrant_shards", "qdrant_replication",
                            "service_port", "service_max_body_bytes", "service_max_images"})


def _convert(name: str, env: str, raw: str, type_name: object) -> object:
    if name in ("home", "service_data_root"):
        return Path(raw)
    if name == "threads" or name in _POSITIVE_INTS:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{env} must be an integer, got {raw!r}") from None
        if value < 0 or (name in _POSITIVE_INTS and value == 0):
            raise ConfigError(f"{env} must be positive, got {value}")
        return value
    return raw


SETTINGS_HELP: list[tuple[str, str, str]] = [
    (
        spec.metadata["env"],
        "" if spec.default in (None, MISSING) else str(spec.default),
        spec.metadata["help"],
    )
    for spec in fields(Settings)
]


_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def _default_principal() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "anonymous"
