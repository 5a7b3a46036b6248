"""syncd keeps a learning platform in step with an ERP through CSV command files."""

__version__ = "0.1.0"
