"""Alembic migration scripts for the catalogue schema."""
