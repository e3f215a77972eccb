"""STAND-IN until branch soap-identity is merged (it owns this module): the interface
of /work/soap-interface.md with only the ServiceUUID check. Deleted at the merge."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from cpr_abonnement.errors import CprAbonnementError
from cpr_abonnement.subscriptions.service import SubscriptionService

SF6002_SERVICE_UUID = "9cdccc2f-3243-11e2-8fef-d4bed98c5934"


class NotAuthorised(CprAbonnementError):
    def __init__(self, message: str, *, check: str) -> None:
        self.check = check
        super().__init__(message)


@dataclass(frozen=True)
class CallerIdentity:
    transport: str
    principal: object | None = None
    certificate_sha256: str | None = None


@dataclass(frozen=True)
class CallContext:
    user_system_uuid: str
    service_agreement_uuid: str | None = None
    user_uuid: str | None = None
    service_uuid: str | None = None
    callers_service_call_identifier: str | None = None


def authorise(engine: Engine, caller: CallerIdentity, context: CallContext, operation: str
              ) -> SubscriptionService:
    if caller.transport == "soap" and context.service_uuid != SF6002_SERVICE_UUID:
        raise NotAuthorised("ServiceUUID is not SF6002's", check="service uuid")
    return SubscriptionService(engine, caller=f"{caller.transport}:{caller.certificate_sha256}")
