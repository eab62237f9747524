"""The one-command demo: sandboxes, install, backfill, 90 simulated days, then the admin (`aftercare demo`)."""

from demo.runner import Demo, DemoError, DemoOptions, DemoResult

__all__ = ["Demo", "DemoError", "DemoOptions", "DemoResult"]
