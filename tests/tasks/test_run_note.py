"""Issue 14, item 4: the run note is a Markdown table (subscriber, outcome, persons,
records, mode) that Airflow's UI renders, and a day without subscribers says why."""

from __future__ import annotations

import datetime as dt
import re

from markdown_it import MarkdownIt

from cpr_abonnement.tasks.payloads import DaySummary, NoteRow

HEAD = "D261119.L431101 (produced 2026-11-19, previous 2026-11-18): 400 persons"


def _rendered(note: str) -> str:
    """As a GFM renderer (the UI's react-markdown with tables) shows it."""
    return MarkdownIt("commonmark").enable("table").render(note)


def _rows(html: str) -> list[list[str]]:
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr) for tr in
            re.findall(r"<tr>(.*?)</tr>", html, re.S)]


def test_the_note_is_a_markdown_table_failed_first():
    rows = [NoteRow("Aalborg | ESDH", "DELIVERED", 12, 30, "push"),
            NoteRow("Odense *Sag*", "FAILED", 3, 5, "push", attempts=2,
                    reason="connection sftp_odense: timed out"),
            NoteRow("Herning Sag", "DELIVERED", 1, 2, "pickup")]
    note = DaySummary(f"{HEAD}; 2 of 3 subscriber(s) delivered", [], ["Odense *Sag*"],
                      False, rows=rows).note()
    html = _rendered(note)
    assert "2 of 3 subscriber(s) delivered" in html.split("<table>")[0]
    assert _rows(html) == [
        ["Subscriber", "Outcome", "Persons", "Records", "Mode"],
        ["Odense *Sag*", "FAILED after 2 attempt(s): connection sftp_odense: timed out "
                         "(runbook step &quot;Delivery failed&quot;)", "3", "5", "push"],
        ["Aalborg | ESDH", "DELIVERED", "12", "30", "push"],
        ["Herning Sag", "DELIVERED", "1", "2", "pick-up"],
    ]


def test_a_long_note_keeps_whole_rows_and_says_how_many_are_left_out():
    rows = [NoteRow(f"Kommune {i:04d} – Sag", "DELIVERED", i, 2 * i, "push")
            for i in range(200)]
    note = DaySummary(f"{HEAD}; 200 of 200 subscriber(s) delivered", [], [], True,
                      rows=rows).note()
    assert len(note) <= 1000
    shown = _rows(_rendered(note))[1:]
    assert shown and all(len(r) == 5 for r in shown)  # no row cut in half
    assert f"and {200 - len(shown)} more subscriber(s)" in note


def test_a_day_without_subscribers_says_so_instead_of_0_of_0():
    text = DaySummary.no_subscribers(dt.date(2026, 11, 19), first_registered=dt.datetime(
        2026, 12, 1, 9, 30))
    assert "0 of 0" not in text
    assert text == ("no subscriber existed yet on 2026-11-19 (the first was registered on "
                    "2026-12-01): nothing to deliver")
    assert DaySummary.no_subscribers(dt.date(2026, 11, 19), first_registered=None) == \
        "no subscriber is registered yet: nothing to deliver"
    assert DaySummary.no_subscribers(dt.date(2026, 11, 19),
                                     first_registered=dt.datetime(2026, 1, 1)) == \
        "no subscriber was active on 2026-11-19: nothing to deliver"
