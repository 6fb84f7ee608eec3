"""``kinotrakt check``: a live, read-only self-check of the deployment against the real services.

The probes and the answers' known shapes live in ``kinotrakt_cli.live_check``, imported when the command runs
(``kinotrakt --help`` loads neither the sync nor pydantic nor requests).
"""

from __future__ import annotations

from typing import Annotated

import typer

from kinotrakt_cli.context import Cli


def run(
    cli: Cli,
    as_json: Annotated[bool, typer.Option("--json", help="print the findings as JSON")] = False,
) -> int:
    """Check the deployment against the real services (read only).

    With the stored tokens, ask Kinopub and Trakt what a sync asks and compare their answers with what kinotrakt
    expects: HTTP status, whether our models read the body, missing and unexpected fields, rate-limit headers,
    and both tokens' expiry. Writes nothing (an access token that has already expired is refreshed and stored,
    as a sync would). Exit code 0 when everything matches, 1 when anything drifted or failed.
    """
    from kinotrakt_cli.live_check import check

    return check(cli, as_json)
