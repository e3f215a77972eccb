"""A subscriber's audit trail as sentences an operator reads at a glance ("added
municipality 0851 Aalborg", "switched to pick-up"), instead of the stored JSON.

The audit keeps the operation and its (masked) arguments as the service recorded them;
this module only words them. Filter operations are worded from the filter types
(:data:`cpr_abonnement.filters.TYPES`), so a new type reads well without a change here;
anything else falls back to the operation's name in words and its arguments.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cpr_abonnement import filters, reference
from cpr_abonnement.delivery import modes

#: Results that the verb already says.
_PLAIN_RESULTS = {"ADDED", "REMOVED"}


def _words(operation: str) -> str:
    """``RemoveSshKey`` -> ``remove ssh key``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", operation).lower()


def _municipality(code: Any) -> str:
    text = str(code).zfill(4)
    known = reference.municipalities().get(text)
    return f"{text} {known.name}" if known else text


def _filter_sentence(operation: str, args: dict[str, Any]) -> str | None:
    for ftype in filters.TYPES:
        for verb, name in (("added", ftype.add_operation), ("removed", ftype.remove_operation)):
            if operation == name + "s":
                return f"{verb} {args.get('count', '?')} {ftype.label} (one call)"
            if operation != name:
                continue
            if not ftype.arguments:
                return f"{verb} {ftype.label}"
            if "code" in args and ftype.noun == "municipality":
                return f"{verb} municipality {_municipality(args['code'])}"
            if "start_age" in args:
                return f"{verb} {ftype.noun} {args['start_age']}–{args['end_age']}"
            values = ", ".join(str(v) for v in args.values())
            return f"{verb} {ftype.noun} {values}".rstrip()
    return None


def sentence(operation: str, arguments: str, result: str) -> str:
    """One audited operation as a sentence, with its result when the verb does not say
    it (``ALREADY_EXISTED``, a refusal, a count)."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        args = {}
    args = args if isinstance(args, dict) else {}
    text = _filter_sentence(operation, args)
    if text is None:
        if operation == "SetDelivery":
            text = f"switched to {modes.label(str(args.get('delivery_mode')))}"
        elif operation == "AddSubscriber":
            text = f"registered ({modes.label(str(args.get('delivery_mode') or 'push'))})"
        elif operation == "RemoveAll":
            text = f"removed all {args.get('group', '?')} filters"
        elif operation == "ReadinessCheck":
            text = "readiness check"
        else:
            shown = ", ".join(f"{k} {v}" for k, v in args.items() if v not in (None, [], ""))
            text = _words(operation) + (f": {shown}" if shown else "")
    return text if result in _PLAIN_RESULTS or not result else f"{text} → {result}"
