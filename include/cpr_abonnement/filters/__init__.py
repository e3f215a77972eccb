"""The filter types. To add one: a module here defining its :class:`FilterType`
(input rule, table, snapshot query, selection, explanation, names) and one entry in
:data:`TYPES`, plus an Alembic revision and ``sql/`` for its table. The service, REST
API, CLI, snapshot and selection loop over :data:`TYPES` and need no change.
"""

from __future__ import annotations

from cpr_abonnement.errors import InvalidFilterGroup
from cpr_abonnement.filters.age_range import AGE_RANGE
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.filters.change_code import CHANGE_CODE
from cpr_abonnement.filters.municipality import MUNICIPALITY_CODE
from cpr_abonnement.filters.no_filter import NO_FILTER
from cpr_abonnement.filters.pnr import PNR
from cpr_abonnement.store.models import Base
from cpr_abonnement.subscriptions.rules import shown

#: Every filter type, in the order GetAllFilters lists them.
TYPES: tuple[FilterType, ...] = (PNR, AGE_RANGE, MUNICIPALITY_CODE, CHANGE_CODE, NO_FILTER)
#: The whole filter database schema: the store's tables and each type's (registered on
#: the store's ``Base`` by the imports above). What ``cprsub db schema`` prints.
METADATA = Base.metadata


def by_group(name: str) -> FilterType:
    """The type RemoveAll's ``filterGroup`` names, spelled as the reference service does."""
    types = TYPES
    for t in types:
        if t.group == name:
            return t
    allowed = ", ".join(t.group for t in types)
    raise InvalidFilterGroup(f"filter group {shown(name)} is not one of {allowed}")
