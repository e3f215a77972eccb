"""``GET /v1/persons/{pnr}``: SF1520's person look-up as JSON, a thin adapter like the SOAP
one (:mod:`cpr_abonnement.api.person_lookup`) onto the same
:func:`~cpr_abonnement.api.persons.look_up_person` and
:func:`~cpr_abonnement.api.persons.reply`.

The route is made by :func:`router` from the app's bearer-token dependency, so it
authenticates exactly as every other REST call of an IT system does; the app's
exception handlers answer 403 (refused) and, from :data:`STATUS`, 404 (no such
person), 422 (malformed PNR) and 503 (no look-up key).
"""

# No ``from __future__ import annotations``: FastAPI reads the route's annotations.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from cpr_abonnement.api.auth import REST, CallerIdentity
from cpr_abonnement.api.persons import danish_today, look_up_person, reply
from cpr_abonnement.api.threads import in_thread
from cpr_abonnement.errors import InvalidPnr, LookupKeyMissing, PersonNotFound
from cpr_abonnement.identities.credentials import Principal

#: The HTTP status of each look-up error (the app answers them with its scrubbed detail).
STATUS = {InvalidPnr: 422, PersonNotFound: 404, LookupKeyMissing: 503}


def router(principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """The look-up route, its caller authenticated by ``principal`` (the app's)."""
    routes = APIRouter(prefix="/v1", tags=["person look-ups"])

    @routes.get("/persons/{pnr}", name="PersonLookup",
                summary="Look a person up in the CPR replica (SF1520's content as JSON)")
    async def person_lookup(pnr: str, who: Annotated[Principal, Depends(principal)],
                      request: Request) -> dict[str, Any]:
        """The person with CPR number `pnr` as the CPR replica holds them: SF1520
        PersonBaseDataExtended's `PersonLookupResponse` with the same element names
        (`persondata`, `adresse`, `relationer`). Your IT system needs a current SF1520
        service agreement (else 403). Every look-up is logged, refusals too. 404: no
        such person; 422: `pnr` is not 10 digits forming a date; 503: look-ups are not
        configured (no look-up key)."""
        state = request.app.state
        found = await in_thread(state, lambda: look_up_person(
            state.cpr.engine, CallerIdentity(REST, principal=who), None, pnr,
            settings=state.settings, replica=state.cpr.replica))
        return reply(found, danish_today())

    return routes
