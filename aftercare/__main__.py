"""`python -m aftercare`: the same command line as the `aftercare` script."""

from aftercare.cli import run

run()
