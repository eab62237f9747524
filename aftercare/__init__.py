"""The `aftercare` console script: the one package that sees every layer and assembles their commands."""
