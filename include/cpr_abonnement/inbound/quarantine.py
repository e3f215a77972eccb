"""Quarantine: a bad extract leaves the inbound location intact, with its reasons."""

from __future__ import annotations

import datetime as dt

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.inbound import local_dir, open_location
from cpr_abonnement.settings import Settings


def quarantine(settings: Settings, name: str, reasons: list[str]) -> str:
    """Move the inbound file, intact, to quarantine with a ``.reason.txt`` beside it
    (PNR-shaped numbers masked); returns where it went."""
    folder = local_dir(settings.quarantine)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{name}.{stamp}"
    open_location(settings.inbound).quarantine(name, target)
    target.with_name(target.name + ".reason.txt").write_text(
        "\n".join(scrub(r) for r in reasons) + "\n", encoding="utf-8")
    return str(target)
