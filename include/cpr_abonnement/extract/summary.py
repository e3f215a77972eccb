"""A short, PNR-free description of an extract, for people and monitoring.

The same dictionary is printed by ``cprsub extract inspect`` and logged by the
pipeline, so what a data engineer sees on the command line matches the Airflow log.
"""

from __future__ import annotations

from typing import Any

from cpr_abonnement.extract.model import ExtractIndex


def describe(index: ExtractIndex) -> dict[str, Any]:
    start, end = index.start, index.end
    events = index.events
    return {
        "file": index.path.name,
        "bytes": index.size,
        "lines": index.lines,
        "line_ending": "CRLF" if index.line_ending == b"\r\n" else "LF",
        "task_number": start.task_number if start else None,
        "production_date": str(start.production_date) if start and start.production_date else None,
        "previous_production_date": (
            str(start.previous_date) if start and start.previous_date else None
        ),
        "end_record_counter": end.counter if end else None,
        "persons": len(index.persons),
        "person_records": index.person_records,
        "records_per_type": dict(sorted(index.record_counts.items())),
        "platform_records": index.platform_records,
        "persons_without_002": int((index.persons["municipality"] < 0).sum()),
        "event_codes": {
            code: int(n) for code, n in events["code"].value_counts().sort_index().items()
        },
        "derived_events": int((events["derived"] != "").sum()),
    }


def render_text(summary: dict[str, Any]) -> str:
    """Human-readable form of :func:`describe`."""
    lines = [
        f"{summary['file']}: task {summary['task_number']}, produced "
        f"{summary['production_date']} (previous {summary['previous_production_date']}), "
        f"{summary['line_ending']}",
        f"  {summary['persons']:,} persons, {summary['person_records']:,} person records, "
        f"{summary['lines']:,} lines, {summary['bytes']:,} bytes",
        "  records per type: " + ", ".join(
            f"{k}={v:,}" for k, v in summary["records_per_type"].items()),
        "  platform records (never forwarded): " + ", ".join(
            f"{k}={v}" for k, v in summary["platform_records"].items()),
        f"  persons without 002 (no current municipality): {summary['persons_without_002']:,}",
        f"  events ({summary['derived_events']:,} derived): " + ", ".join(
            f"{k}={v:,}" for k, v in summary["event_codes"].items()),
    ]
    return "\n".join(lines)
