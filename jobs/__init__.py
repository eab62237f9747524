"""Scheduled work: the declarative list of periodic jobs lives here (see jobs.schedule)."""
