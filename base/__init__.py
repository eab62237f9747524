"""The base every layer may use and that imports nothing of the project: the clock, retries, shared servers."""
