"""Messaging: the outbox, the send policy, the channels (email, Amazon, review replies) and templates."""
