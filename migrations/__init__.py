"""Alembic migrations (run with `aftercare db upgrade`)."""
