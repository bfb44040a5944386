"""Subcommands of the ``planessl`` command line (see :mod:`planessl.cli`)."""
