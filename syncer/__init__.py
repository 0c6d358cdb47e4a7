"""syncer: Contacthub-centric CDP sync engine."""

__version__ = "0.1.0"
