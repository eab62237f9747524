"""Flows: each one module declaring who is due, when, and which outbox rows to write."""
