"""``make demo`` as the README promises it: two syncs, what became of each case of Kinopub's real data (read from
the fake Trakt's plays), then other tools' duplicates found by an audit, removed by its fix, and a clean history
after (the demo checks the fakes' own plays and exits 1, saying why, on any difference)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from devkit.demo import run_demo
from kinotrakt.sync import collect, numbering

REAL_DATA_HEADER = (
    "Kinopub's real data (docs/kinopub.md#what-the-user-watched): what each case became on Trakt after both runs, "
    "and why"
)
DUNE = (
    "  + Dune: one play at 2025-10-10T21:40Z - a film whose trailer was never opened: the trailer is an extra, "
    "the film counts"
)
VIENNA = (
    "  + Vienna: Empire, Dynasty and Dream: one play at 2025-11-22T20:15Z - a 3-part film: one play at its last part; "
    "part 1 re-opened later is not a rewatch"
)
BLACK_MIRROR = [
    f"  + Черное зеркало / Black Mirror S02E0{n}: one play at 2025-01-11T19:12Z - a season longer on Kinopub "
    "(a special inside): posted, the titles agree"
    for n in (1, 2, 3)
]
SHERLOCK_S00E01 = "  + Шерлок / Sherlock S00E01: one play at 2026-03-07T20:30Z - a special whose title agrees"
REBELS_S04E14 = (
    "  + Звёздные войны: Повстанцы / Star Wars Rebels S04E14: one play at 2026-04-11T19:00Z - the episode before a "
    "merged one"
)
WHITE_CHRISTMAS = (
    "  ? Черное зеркало / Black Mirror S02E04: unmatched numbering_mismatch - the special White Christmas as "
    "Kinopub S02E04: Trakt has no S02E04"
)
SHERLOCK_S00E02 = (
    "  ? Шерлок / Sherlock S00E02: unmatched numbering_mismatch - a special numbered otherwise on Trakt (titles differ)"
)
REBELS_S04E15 = (
    "  ? Звёздные войны: Повстанцы / Star Wars Rebels S04E15: unmatched merged_episode - one Kinopub episode that is "
    "Trakt's S04E15 + S04E16"
)


def demo() -> tuple[int, str]:
    out = io.StringIO()
    return run_demo(out), out.getvalue()


def real_data_section(text: str) -> list[str]:
    """The section's lines, from its header to the blank line after it."""
    lines = text.splitlines()
    start = lines.index(REAL_DATA_HEADER)
    return lines[start : lines.index("", start)]


def test_the_demo_shows_what_each_real_data_case_became_and_ends_with_a_clean_history() -> None:
    # When the demo runs
    code, text = demo()

    # Then it succeeds, and the real-data section says, case by case, what Trakt holds after both runs: one play
    # for the film beside its trailer, one for the 3-part film re-opened between the runs, one per episode whose
    # Trakt counterpart is certain; none for the specials and the merged episode, each unmatched saying why
    assert code == 0, text[-3000:]
    section = real_data_section(text)
    assert section[1:8] == [DUNE, VIENNA, *BLACK_MIRROR, SHERLOCK_S00E01, REBELS_S04E14]
    assert section[8::2] == [WHITE_CHRISTMAS, SHERLOCK_S00E02, REBELS_S04E15]
    white_christmas, sherlock, rebels = section[9::2]
    assert "Kinopub season 2 has 4 episodes, Trakt's season 2 3" in white_christmas
    assert "titles differ: Kinopub “Безобразная невеста / The Abominable Bride”, Trakt S00E02 “Many Happy Returns”" in (
        sherlock
    )
    assert "looks like Trakt S04E15 + S04E16" in rebels
    assert "kinotrakt map 31500 episode 4 15 S04E15 S04E16" in rebels
    # and the audit found and removed the other tools' duplicates
    assert "== Audit (report only): OK ==" in text
    assert "duplicate plays            : 4 found, 4 removed" in text
    assert "duplicate plays: 0." in text
    assert text.rstrip().endswith("demo: OK - the second run added nothing, and the audit left the history clean")


def trailer_taken_for_a_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect, "feature_parts", list)


def reopened_part_taken_for_a_rewatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect, "settle_with_ledger", lambda view, sent, rewatches: (view, None))


def specials_trusted_by_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numbering, "titles_agree", lambda kinopub, trakt: True)


@pytest.mark.parametrize(
    ("break_sync", "printed", "difference"),
    [
        (
            trailer_taken_for_a_part,
            "  - Dune: no play on Trakt, not unmatched - a film whose trailer was never opened",
            "Kinopub's real data: Dune: documented one play at 2025-10-10T21:40Z, but no play on Trakt, not unmatched",
        ),
        (
            reopened_part_taken_for_a_rewatch,
            "  + Vienna: Empire, Dynasty and Dream: 2 plays at 2025-11-22T20:15Z, ",
            "Kinopub's real data: Vienna: Empire, Dynasty and Dream: documented one play at 2025-11-22T20:15Z, "
            "but 2 plays at 2025-11-22T20:15Z, ",
        ),
        (
            specials_trusted_by_number,
            "  + Шерлок / Sherlock S00E02: one play at 2026-03-08T20:30Z - a special numbered otherwise on Trakt",
            "Kinopub's real data: Шерлок / Sherlock S00E02: documented unmatched numbering_mismatch, but one play at "
            "2026-03-08T20:30Z",
        ),
    ],
)
def test_a_sync_that_breaks_a_real_data_rule_is_shown_and_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch,
    break_sync: Callable[[pytest.MonkeyPatch], None],
    printed: str,
    difference: str,
) -> None:
    # Given a sync that breaks one of the rules for Kinopub's real data
    break_sync(monkeypatch)

    # When the demo runs
    code, text = demo()

    # Then its real-data section prints what Trakt really holds, and the demo fails naming the case
    assert code == 1, text[-3000:]
    assert any(line.startswith(printed) for line in real_data_section(text)), "\n".join(real_data_section(text))
    verdict = text[text.rindex("demo: FAILED") :].splitlines()
    assert any(line.startswith(f"  - {difference}") for line in verdict[1:]), "\n".join(verdict)
