"""The ``kinotrakt`` command line: set a deployment up, link both accounts, run and watch the sync."""
