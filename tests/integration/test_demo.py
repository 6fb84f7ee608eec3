"""``make demo`` as the README promises it: two syncs, then other tools' duplicates found by an audit, removed by
its fix, and a clean history after (the demo checks the fakes' own plays and exits 1 on any difference)."""

from __future__ import annotations

import io

from devkit.demo import run_demo


def test_the_demo_ends_with_an_audit_that_leaves_the_history_clean() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0, out.getvalue()[-3000:]
    text = out.getvalue()
    assert "== Audit (report only): OK ==" in text
    assert "duplicate plays            : 4 found, 4 removed" in text
    assert "duplicate plays: 0." in text
    assert text.rstrip().endswith("demo: OK - the second run added nothing, and the audit left the history clean")
