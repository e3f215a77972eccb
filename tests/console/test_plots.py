"""The console's SVG plots: stable colours, whole names, the newest day labelled."""

from __future__ import annotations

import datetime as dt
import re

from cpr_abonnement.console.plots import colour, stacked_bars

DAYS = [dt.date(2026, 11, d) for d in range(2, 28)]
LONG = "Dødsboskifteretten (eventuelt fælles for flere kommuner)"


def test_a_subscriber_keeps_its_colour_whoever_else_is_plotted():
    alone = stacked_bars("x", DAYS, {"Aalborg ESDH": {DAYS[0]: 5}})
    crowded = stacked_bars("x", DAYS, {"Odense Sag": {DAYS[0]: 1}, LONG: {DAYS[0]: 2},
                                       "Aalborg ESDH": {DAYS[0]: 5}})
    fill = f'fill="{colour("Aalborg ESDH")}"><title>Aalborg ESDH'
    assert fill in alone and fill in crowded


def test_legends_show_whole_names_and_the_newest_day_is_labelled():
    svg = stacked_bars("x", DAYS, {LONG: {DAYS[-1]: 2}})
    legend = "".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert legend.replace(" ", "") == LONG.replace(" ", "")
    assert ">27.11</text>" in svg
