"""The subscription service: every operation an IT system or an operator makes on the
filter database, in one class that the transports (SOAP, REST, the CLI) and the
pipeline share. Its jobs live in their own modules: the SF6002 filter operations
(:mod:`.operations`), administering IT systems (:mod:`.administration`), applying a
registration document (:mod:`.registering`), on the plumbing of :mod:`.base`."""

from __future__ import annotations

from cpr_abonnement.subscriptions.operations import FilterOperations
from cpr_abonnement.subscriptions.registering import Registering


class SubscriptionService(FilterOperations, Registering):
    """The operations, bound to a database and to the caller recorded in the audit.

    ``clock`` is for tests that need fixed instants; left out, every stamp comes from
    the database server (see :func:`lock_filters`).
    """
