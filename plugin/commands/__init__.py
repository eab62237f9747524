"""CLI command modules, one per subsystem; plugin.cli registers them all."""
