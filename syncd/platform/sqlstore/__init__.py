"""The embedded SQL platform store: SQLite by default, PostgreSQL by URL.

Only ``bootstrap.py`` (and tests) import this package; processors see the port.
"""

from syncd.platform.sqlstore.adapter import SqlPlatform
from syncd.platform.sqlstore.schema import create_schema

__all__ = ["SqlPlatform", "create_schema"]
