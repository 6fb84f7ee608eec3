"""kinotrakt: copy every finished Kinopub view into Trakt.tv history, exactly once."""

__version__ = "0.1.0"
