"""``python -m kinotrakt_cli``, the same as the ``kinotrakt`` console script (see :mod:`kinotrakt_cli.app`)."""

from kinotrakt_cli.app import main

raise SystemExit(main())
