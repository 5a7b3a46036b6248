"""A fake Moodle for the tests: a real HTTP server on 127.0.0.1 speaking Moodle's REST web services.

Behaviour is taken from the recordings in ``../shared/moodle-ws`` (a Moodle 4.5 site): the
same error bodies (always HTTP 200), the same batch semantics (whole-batch rollback, per-item
warnings, silently ignored items) and the same quirks. See ``README.md`` in this folder.

Public surface: :class:`FakeMoodle` (the server), :class:`Site` (its state, with seeding and
read-back helpers), :data:`SERVICE_FUNCTIONS` and the form codec in :mod:`tests.moodle_fake.phpform`.
"""

from __future__ import annotations

from tests.moodle_fake.server import Call, FakeMoodle, Fault
from tests.moodle_fake.site import Site
from tests.moodle_fake.wsfunctions import SERVICE_FUNCTIONS

__all__ = ["SERVICE_FUNCTIONS", "Call", "FakeMoodle", "Fault", "Site"]
