"""The audit (issue 16): read the whole Trakt history and every completed Kinopub view, report the plays that
are exact duplicates, the views missing on Trakt and the plays whose view is no longer finished, and repair what
the user asks for — removing only plays that are certainly extra.

``history.py`` reads Trakt's history window by window and finds exact duplicates; ``removal.py`` removes extra
plays safely; ``progress.py`` is what an unfinished audit keeps between runs; ``report.py`` the report;
``run.py`` the audit itself, step by step."""
