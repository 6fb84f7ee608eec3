"""``python -m kinotrakt``: the command line (see :mod:`kinotrakt.cli`)."""

from kinotrakt.cli import main

raise SystemExit(main())
