"""Data-quality expectations on the parsed extract, run with great-expectations 1.x.

Structural validation (:mod:`.validation`) proves the file is well-formed; these
expectations check that what it says is plausible: PNRs are ten digits and unique,
birth dates agree with the PNR's century rule, statuses and municipality codes come
from the known sets, event codes have CPR's shape. GX is imported lazily (it costs
seconds) and run in an ephemeral context, so nothing is written to disk.

GX results carry the offending values themselves (``partial_unexpected_list``),
which for a PNR column would be full CPR numbers. Results are therefore requested
with ``BASIC`` format and no example values, and the examples in
:class:`ExpectationOutcome` are computed here from the frame and masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cpr_abonnement.cpr_number import mask
from cpr_abonnement.extract.dates import birth_from_pnr
from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.reference import municipalities

#: 001 STATUS values (``cpr-format.md`` §4.3, with kaqa.gl's 10 for reserved numbers).
STATUS_CODES = ["01", "03", "05", "07", "10", "20", "30", "50", "60", "70", "80", "90"]
#: AFLEDTMRK values (``cpr-format.md`` §3.3), blank for the event's main person.
DERIVED_MARKINGS = ["", "ÆG", "PA", "TÆ", "TP", "NÆ", "NP", "HÆ", "HP", "FA", "TF", "NF",
                    "MO", "TM", "NM", "BØ", "TB", "NB", "PT", "PN", "PH", "NV", "VS"]
EVENT_CODE_PATTERN = r"^[A-Z][0-9]{2}$"
#: Plausibility expectations tolerate this share of odd values, because real data has
#: them (a status-60 person's PNR no longer matches the birth date; CPR adds codes):
#: one odd person must not stop a day's delivery to everyone, a systematically wrong
#: file must. The odd values are still counted and reported (``warnings``).
MOSTLY = 0.999


@dataclass(frozen=True, slots=True)
class ExpectationOutcome:
    """One expectation's result without any unmasked value."""

    name: str
    column: str
    success: bool
    unexpected: int
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        state = "ok" if self.success else "FAILED"
        if self.unexpected:
            state += f" ({self.unexpected} unexpected"
            state += f", e.g. {', '.join(self.examples)})" if self.examples else ")"
        return f"{self.name} on {self.column}: {state}"


@dataclass
class QualityReport:
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Met within tolerance, but with odd values worth a look."""
        return [o for o in self.outcomes if o.success and o.unexpected]


def person_frame(index: ExtractIndex) -> pd.DataFrame:
    """The person summary in the textual form the expectations are written against."""
    p = index.persons
    pnr = index.pnr_text()
    pnr_birth = _yyyymmdd_text(birth_from_pnr(p["pnr"].to_numpy()))
    birth = _yyyymmdd_text(p["birth_date"].to_numpy())
    municipality = p["municipality"].map(lambda k: f"{k:04d}" if k >= 0 else None)
    return pd.DataFrame({
        "pnr": pnr,
        "birth_date": birth,
        # FOED_DT and the PNR must agree where FOED_DT was used (a partial FOED_DT,
        # e.g. month 00, falls back to the PNR and agrees by construction).
        "birth_matches_pnr": p["birth_from_pnr"].to_numpy() | (birth == pnr_birth),
        "status": p["status"].map(lambda s: f"{s:02d}" if s >= 0 else None),
        "municipality": municipality,
    })


def _yyyymmdd_text(v: np.ndarray) -> np.ndarray:
    return np.array([f"{x // 10000:04d}-{x // 100 % 100:02d}-{x % 100:02d}" if x else ""
                     for x in v.tolist()], dtype=object)


def _examples(frame: pd.DataFrame, column: str, bad: pd.Series, pnr_column: bool) -> tuple:
    rows = frame.loc[bad.fillna(False).astype(bool)].head(5)
    if pnr_column:
        return tuple(mask(str(v)) for v in rows[column])
    who = rows["pnr"].map(mask) if "pnr" in rows else pd.Series([""] * len(rows))
    return tuple(f"{w}: {v!r}" if w else repr(v) for w, v in zip(who, rows[column], strict=True))


def run_expectations(index: ExtractIndex) -> QualityReport:
    """Run the suite on the index's persons and events; never raises on failures."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    persons = person_frame(index)
    ev = index.events
    events = pd.DataFrame({
        "pnr": index.pnr_text(ev["person"].to_numpy()).to_numpy() if len(ev) else [],
        "code": ev["code"].to_numpy(),
        "derived": ev["derived"].to_numpy(),
    })
    known_kom = sorted(municipalities())
    suites = {
        "persons": (persons, [
            (gxe.ExpectColumnValuesToMatchRegex(column="pnr", regex=r"^[0-9]{10}$"),
             lambda f: ~f["pnr"].str.fullmatch(r"[0-9]{10}")),
            (gxe.ExpectColumnValuesToBeUnique(column="pnr"),
             lambda f: f["pnr"].duplicated(keep=False)),
            (gxe.ExpectColumnValuesToBeInSet(column="birth_matches_pnr", value_set=[True],
                                             mostly=MOSTLY),
             lambda f: ~f["birth_matches_pnr"]),
            (gxe.ExpectColumnValuesToBeInSet(column="status", value_set=STATUS_CODES,
                                             mostly=MOSTLY),
             lambda f: ~f["status"].isin(STATUS_CODES)),
            (gxe.ExpectColumnValuesToBeInSet(column="municipality", value_set=known_kom,
                                             mostly=MOSTLY),
             lambda f: f["municipality"].notna() & ~f["municipality"].isin(known_kom)),
        ]),
        "events": (events, [
            (gxe.ExpectColumnValuesToMatchRegex(column="code", regex=EVENT_CODE_PATTERN),
             lambda f: ~f["code"].str.fullmatch(EVENT_CODE_PATTERN)),
            (gxe.ExpectColumnValuesToBeInSet(column="derived", value_set=DERIVED_MARKINGS,
                                             mostly=MOSTLY),
             lambda f: ~f["derived"].isin(DERIVED_MARKINGS)),
        ]),
    }
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no bars on stderr
    source = ctx.data_sources.add_pandas("cpr_extract")
    report = QualityReport()
    for name, (frame, checks) in suites.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("day")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"cpr_{name}",
                                                   expectations=[c for c, _ in checks]))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"cpr_{name}", data=batch, suite=suite))
        result = vd.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "BASIC", "partial_unexpected_count": 0},
        )
        finders = {(type(c).__name__, c.column): finder for c, finder in checks}
        for r in result.results:
            cfg = r.expectation_config
            col = cfg.kwargs["column"]
            kind = type(r.expectation_config.to_domain_obj()).__name__
            unexpected = int((r.result or {}).get("unexpected_count") or 0)
            examples: tuple = ()
            if unexpected and len(frame):
                examples = _examples(frame, col, finders[kind, col](frame), col == "pnr")
            report.outcomes.append(
                ExpectationOutcome(kind, f"{name}.{col}", bool(r.success), unexpected, examples)
            )
    return report
