"""Marketplace clients: no Flask, no ORM; each yields plain records (connectors.records)."""
