"""The Moodle Web Services transport: request encoding, error replies, the HTTP client.

The platform adapter builds on :class:`MoodleClient`; nothing here knows about rows or files.
"""

from __future__ import annotations

from syncd.platform.moodle.client import MoodleClient, load_token
from syncd.platform.moodle.encoding import encode_params
from syncd.platform.moodle.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleTransportError,
    MoodleWarning,
    MoodleWsError,
    is_error,
    warnings_of,
)

__all__ = [
    "MoodleAuthError",
    "MoodleClient",
    "MoodleError",
    "MoodleTransportError",
    "MoodleWarning",
    "MoodleWsError",
    "encode_params",
    "is_error",
    "load_token",
    "warnings_of",
]
