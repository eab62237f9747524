"""CLI command modules of the app, one per subsystem; plugin.cli lists them, common.py holds what they share."""
