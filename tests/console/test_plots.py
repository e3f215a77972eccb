"""The console's SVG plots: stable colours, whole names, the newest day labelled."""

from __future__ import annotations

import datetime as dt
import re

from cpr_abonnement.console.plots import colour, stacked_bars

DAYS = [dt.date(2026, 11, d) for d in range(2, 28)]
LONG = "Dødsboskifteretten (eventuelt fælles for flere kommuner)"


NUMBERS = {"Aalborg ESDH": 1, "Odense Sag": 2, LONG: 3}
COLOURS = {name: colour(number) for name, number in NUMBERS.items()}


def test_a_subscriber_keeps_its_colour_whoever_else_is_plotted():
    alone = stacked_bars("x", DAYS, {"Aalborg ESDH": {DAYS[0]: 5}}, colours=COLOURS)
    crowded = stacked_bars("x", DAYS, {"Odense Sag": {DAYS[0]: 1}, LONG: {DAYS[0]: 2},
                                       "Aalborg ESDH": {DAYS[0]: 5}}, colours=COLOURS)
    fill = f'fill="{colour(1)}"><title>Aalborg ESDH'
    assert fill in alone and fill in crowded


def test_the_first_ten_subscribers_never_share_a_colour():
    assert len({colour(number) for number in range(1, 11)}) == 10


def test_legends_show_whole_names_and_the_newest_day_is_labelled():
    svg = stacked_bars("x", DAYS, {LONG: {DAYS[-1]: 2}}, colours=COLOURS)
    legend = "".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert legend.replace(" ", "") == LONG.replace(" ", "")
    assert ">27.11</text>" in svg
