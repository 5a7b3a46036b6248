"""The learning platform: the port (``base``) and its adapters (``sqlstore``)."""
