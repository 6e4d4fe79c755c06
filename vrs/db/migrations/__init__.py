"""Alembic migrations of the record service; run them with ``vrs db upgrade``."""
