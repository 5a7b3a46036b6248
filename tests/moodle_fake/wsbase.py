"""The shape of one web-service function of the fake Moodle.

Each ``tests/moodle_fake/ws_<area>.py`` module exports ``FUNCTIONS: list[WsFunction]``;
:mod:`tests.moodle_fake.wsfunctions` gathers them by name. The server runs a call as
Moodle's REST server does: it holds ``site.lock``, validates the decoded form against
``params`` (:func:`tests.moodle_fake.schema.validate_params`), opens the call's
transaction (``site.begin()``), calls ``run(site, cleaned)`` and closes it
(``site.end()``). A :class:`~tests.moodle_fake.errors.WsError` raised by ``run`` rolls
everything back (``site.rollback_to(0)``) and becomes the error body. A function that
commits item by item (``core_user_update_users``) or fails *after* committing (the
welcome message of ``enrol_manual_enrol_users``) manages ``site.savepoint()`` /
``site.rollback_to(mark)`` itself; to fail after committing it calls ``site.end()``
before raising (nothing is left to roll back) — see each module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.moodle_fake.schema import Single, validate_params

if TYPE_CHECKING:
    from tests.moodle_fake.site import Site

Run = Callable[["Site", dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class WsFunction:
    """One function: its name, its parameter description and its body."""

    name: str
    params: Single
    run: Run

    def call(self, site: Site, params: dict[str, Any]) -> Any:
        """Run as the server does: under the lock, validated, in the call's transaction (rolled
        back when ``run`` raises)."""
        with site.lock:
            cleaned = validate_params(self.params, params)
            site.begin()
            try:
                return self.run(site, cleaned)
            except BaseException:
                site.rollback_to(0)
                raise
            finally:
                site.end()
