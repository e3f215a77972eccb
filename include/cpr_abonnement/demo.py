"""The README's first command, at this stage: the extract library end to end.

Generates a sample extract for the latest delivery day, validates it (structure and
data-quality expectations), prints its summary, and writes an unfiltered delta to
prove the writer reproduces the input byte for byte. The pipeline issue replaces this
with the Airflow DAG delivering filtered files over SFTP.
"""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path

import numpy as np

from cpr_abonnement.calendar import DeliveryCalendar
from cpr_abonnement.extract.expectations import run_expectations
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.summary import describe, render_text
from cpr_abonnement.extract.validation import check
from cpr_abonnement.extract.writer import write_delta

WORK = Path("var/demo")


def main() -> int:
    cal = DeliveryCalendar.default()
    day = cal.previous_delivery_day(dt.date.today() + dt.timedelta(days=1))
    WORK.mkdir(parents=True, exist_ok=True)
    source = WORK / f"D{day:%y%m%d}.L431101"
    with open(source, "wb") as fh:
        generate(fh, production_date=day, persons=2_000, seed=day.toordinal())
    index = scan(source)
    check(index, expect_date=day)
    report = run_expectations(index)
    print(render_text(describe(index)))
    for outcome in report.outcomes:
        print(f"  expectation {outcome}")
    copy = WORK / "all-persons" / source.name
    copy.parent.mkdir(exist_ok=True)
    with open(copy, "wb") as fh:
        stats = write_delta(index, np.ones(len(index.persons), dtype=bool), fh)
    same = filecmp.cmp(source, copy, shallow=False)
    print(f"unfiltered delta {copy}: {stats.persons} persons, {stats.records} records, "
          f"sha256 {stats.sha256[:16]}…, byte-identical to the source: {same}")
    return 0 if report.success and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
