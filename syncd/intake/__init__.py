"""Intake: from the drop folder (``sync/``) into the store.

``watcher`` decides when a file in sync/ is complete, ``store`` owns the <data> layout and
its atomic moves, ``ledger`` records every arrival's state.
"""
