"""The embedded SQL platform store: SQLite by default, PostgreSQL by URL.

Only ``bootstrap.py`` (and tests) import this package; processors see the port.
"""

from syncd.platform.sqlstore.adapter import NoFilesRootError, SqlPlatform
from syncd.platform.sqlstore.blobs import BlobStore
from syncd.platform.sqlstore.schema import create_schema

__all__ = ["BlobStore", "NoFilesRootError", "SqlPlatform", "create_schema"]
