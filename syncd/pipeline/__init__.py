"""From a stored file to applied rows: routing, running, reports and tryback."""
