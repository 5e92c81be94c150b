"""Every error ASIF Platform raises on purpose.

The hierarchy::

    AsifError
    ├── ConfigError          bad settings, options or arguments
    │   └── AlreadyExists    the name is taken (collection, team, frozen version)
    ├── EncoderError         a model cannot be loaded or an input cannot be encoded
    ├── AnchorStoreError     Qdrant refused, lost or mismatched something
    │   └── SchemaMismatch   an existing collection has other vectors than expected
    ├── CatalogError         the SQL catalog failed or is not migrated
    ├── ConsentError         an operation is not allowed for these pairs
    ├── IngestError          an input file or record cannot be read
    ├── NotFound             a named collection, anchor or file does not exist
    └── PermissionDenied     the acting principal's role does not allow the action

Upstream exceptions (qdrant-client, qdrant-edge, SQLAlchemy) are translated into
these at the boundary of the module that calls them, with the original chained.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "AnchorStoreError",
    "AsifError",
    "CatalogError",
    "ConfigError",
    "ConsentError",
    "EncoderError",
    "IngestError",
    "NotFound",
    "PermissionDenied",
    "SchemaMismatch",
]


class AsifError(Exception):
    """Base class of every error raised by ASIF Platform."""


class ConfigError(AsifError):
    """A setting, option or argument is invalid."""


class AlreadyExists(ConfigError):
    """The name is taken: a collection, team or frozen version of that name exists."""


class EncoderError(AsifError):
    """An encoder cannot be loaded, or an input cannot be encoded."""


class AnchorStoreError(AsifError):
    """The vector store failed or holds something unexpected."""


class SchemaMismatch(AnchorStoreError):
    """An existing Qdrant collection's vectors differ from what the catalog expects."""


class CatalogError(AsifError):
    """The SQL catalog failed, or its schema is not at the expected revision."""


class ConsentError(AsifError):
    """The operation is not allowed for the pairs or principal involved."""


class IngestError(AsifError):
    """An input file or record cannot be read."""


class NotFound(AsifError):
    """A named collection, anchor or file does not exist."""


class PermissionDenied(AsifError):
    """The acting principal's role does not allow the action (it is audited)."""
