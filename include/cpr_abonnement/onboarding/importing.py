"""Migration from Serviceplatformen: an IT system's existing filters, from a saved SF6002
``GetAllFiltersResponse`` or a plain list of PNRs (``cprsub filters import``).

The reply is read the way the real service writes it (serviceplatformen-compat.md):
anywhere in the document, a ``GetAllFiltersResponse`` element whose children are
``AgeRange`` (``StartAge``, ``EndAge``), ``ChangeCode``, ``MunicipalityCode`` (without
leading zeros: ``706``), ``PNR`` and, from version 1.1, ``noFilter`` — matched by local
name, whatever the prefixes. Anything else is a plain list: one PNR per line (blank lines
and ``#`` comments ignored). The XML parser resolves no entities and fetches nothing.
This module only parses (:func:`parse_filters`); loading is
:meth:`~cpr_abonnement.subscriptions.service.SubscriptionService.import_filters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from cpr_abonnement.errors import FilterInputError


class InvalidFilterFile(FilterInputError):
    """A file to import is neither a GetAllFiltersResponse nor a list of PNRs."""

    rule = "filter file"


@dataclass
class ImportPlan:
    """The filters a file lists, as raw arguments per filter type (validated on load)."""

    #: (filter type's ``group``, raw arguments) in file order, PNRs aside.
    items: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    pnrs: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.items) + len(self.pnrs)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                          remove_comments=True)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child_text(element: etree._Element, name: str) -> str:
    for child in element:
        if _local(child) == name:
            return (child.text or "").strip()
    raise InvalidFilterFile(f"an {_local(element)} without {name}")


def _from_reply(data: bytes) -> ImportPlan:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidFilterFile(f"not well-formed XML ({exc.msg})") from exc
    found = [e for e in root.iter() if _local(e) == "GetAllFiltersResponse"]
    if len(found) != 1:
        raise InvalidFilterFile(f"expected one GetAllFiltersResponse element, found "
                                f"{len(found)}")
    plan = ImportPlan()
    for child in found[0]:
        name, text = _local(child), (child.text or "").strip()
        if name == "AgeRange":
            plan.items.append(("AgeRange", (_child_text(child, "StartAge"),
                                            _child_text(child, "EndAge"))))
        elif name in ("ChangeCode", "MunicipalityCode"):
            plan.items.append((name, (text,)))
        elif name == "PNR":
            plan.pnrs.append(text)
        elif name == "noFilter":
            if text.lower() not in ("true", "false", "1", "0"):
                raise InvalidFilterFile(f"noFilter is {text[:10]!r}, not a boolean")
            if text.lower() in ("true", "1"):
                plan.items.append(("NoFilter", ()))
        elif name:
            raise InvalidFilterFile(f"unexpected element {name[:40]} in "
                                    "GetAllFiltersResponse")
    return plan


def parse_filters(data: bytes) -> ImportPlan:
    """The filters in a saved GetAllFiltersResponse or a plain PNR list."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return _from_reply(head)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidFilterFile("a PNR list is UTF-8 text, one PNR per line") from exc
    return ImportPlan(pnrs=[ln.strip() for ln in text.splitlines()
                            if ln.strip() and not ln.lstrip().startswith("#")])
