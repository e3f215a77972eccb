"""Exception tree of the service.

Modelled on python-stdnum's ``ValidationError`` family: one base per domain
(extract, filter input, delivery), narrow subclasses per rule, and every error
carrying enough context (line, record type, field, masked PNR, subscriber) for a
data engineer to act on it without opening the file. Messages never contain a full
PNR: callers pass PNRs through :func:`cpr_abonnement.masking.mask` first, and
:class:`ExtractError` masks the ``pnr`` it is given itself.
"""

from __future__ import annotations

from cpr_abonnement.masking import mask, scrub


class CprAbonnementError(Exception):
    """Base of every error raised by this package."""


class ExtractError(CprAbonnementError, ValueError):
    """A change extract breaks the format or a file-level rule."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        record_type: str | None = None,
        field: str | None = None,
        pnr: str | None = None,
    ) -> None:
        self.line = line
        self.record_type = record_type
        self.field = field
        self.masked_pnr = mask(pnr) if pnr else None
        self.detail = message
        super().__init__(self._render())

    def extended(self, note: str) -> ExtractError:
        """A copy of this error, same type and place, with ``note`` appended."""
        return type(self)(
            self.detail + note,
            line=self.line,
            record_type=self.record_type,
            field=self.field,
            pnr=self.masked_pnr,
        )

    def _render(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.record_type is not None:
            where.append(f"record {self.record_type}")
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.masked_pnr:
            where.append(f"PNR {self.masked_pnr}")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail


class RecordFormatError(ExtractError):
    """A record is too short, too long or has a malformed field."""


class UnknownRecordType(ExtractError):
    """A line starts with a record type that U12170 does not define."""


class TrailerCountMismatch(ExtractError):
    """The 999 counter differs from the number of records between 000 and 999."""


class ProductionDateMismatch(ExtractError):
    """The 000 production date is not the delivery day the run expects."""


class ProductionDateGap(ExtractError):
    """The previous production date does not chain onto the last processed extract."""


class ExtractConflict(ExtractError):
    """A different file for the same task and production date was processed before."""


class ExtractNotValidated(ExtractError):
    """The file handed to a step is not the one validated: its SHA-256 differs."""


class ExtractValidationFailed(ExtractError):
    """One or more validation rules failed; ``problems`` lists every one of them."""

    def __init__(self, problems: list[ExtractError], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        rules = sorted({type(p).__name__ for p in problems})
        head = f"{source}: " if source else ""
        lines = [f"{head}{len(problems)} validation problem(s) ({', '.join(rules)})"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class ExtractRejected(CprAbonnementError):
    """The inbound extract failed validation and was quarantined.

    When the sensor rejects a complete file before it is parsed, ``file_name``, ``rule``
    and ``error`` say what broke, ``quarantined_to`` where the file went and
    ``size_bytes`` how big it was, so the task can record the verdict for the console.
    """

    def __init__(self, message: str, *, file_name: str | None = None,
                 rule: str | None = None,
                 error: ExtractError | None = None, quarantined_to: str | None = None,
                 size_bytes: int | None = None) -> None:
        self.file_name = file_name
        self.rule = rule
        self.error = error
        self.quarantined_to = quarantined_to
        self.size_bytes = size_bytes
        super().__init__(message)


class ExtractRetired(CprAbonnementError):
    """A re-run of a day whose staged extract retention removed: the file is gone from
    this service and must be put back before the day can run again."""

    def __init__(self, message: str, *, file_name: str, removed_at: str) -> None:
        self.file_name = file_name
        self.removed_at = removed_at
        super().__init__(message)


class DiskSpaceLow(CprAbonnementError):
    """The staging volume would fill up if the day were filtered now."""


class ChainBroken(CprAbonnementError):
    """The extract does not chain onto the last processed one: a day is missing."""


class ReplicaNotLoaded(CprAbonnementError):
    """A change extract was to be applied to a replica no status extract has loaded."""


class ReplicaChainGap(CprAbonnementError):
    """The change extract does not chain onto the newest one applied to the replica."""


class PersonNotFound(CprAbonnementError, LookupError):
    """No person with the PNR looked up is in the replica."""


class LookupKeyMissing(CprAbonnementError):
    """``CPRSUB_LOOKUP_KEY`` is not set: look-ups cannot be recorded, so none is answered."""


class RunDateRefused(CprAbonnementError, ValueError):
    """The run is for a day it must not process: a future day, or a ``delivery_day``
    param that contradicts its logical date. Refused at once, never retried."""


class InvalidPnr(CprAbonnementError, ValueError):
    """A PNR is not 10 digits or its first six digits are not a real date."""


class FilterInputError(CprAbonnementError, ValueError):
    """A subscription operation got input that breaks one of product.md §2's rules."""

    rule: str = "input"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidAgeRange(FilterInputError):
    """Ages must be whole numbers 0-999 with StartAge <= EndAge."""

    rule = "age range"


class InvalidMunicipalityCode(FilterInputError):
    """Municipality codes are 1-4 digits."""

    rule = "municipality code"


class InvalidEventCode(FilterInputError):
    """Event codes are one letter followed by two digits."""

    rule = "event code"


class InvalidFilterGroup(FilterInputError):
    """RemoveAll names one of the filter groups (PNR, AgeRange, MunicipalityCode, ChangeCode,
    NoFilter)."""

    rule = "filter group"


class InvalidPnrInput(FilterInputError):
    """A PNR filter is not 10 digits forming a real date."""

    rule = "PNR"


class UnknownSubscriber(CprAbonnementError, LookupError):
    """No subscriber with that UserSystemUUID exists."""


class SubscriberExists(CprAbonnementError):
    """A subscriber with that UserSystemUUID is already registered."""


class InvalidSubscriber(FilterInputError):
    """Subscriber fields break a rule (UUID format, empty name)."""

    rule = "subscriber"


class InvalidRemoteDir(FilterInputError):
    """A subscriber's remote directory must stay inside the folder the SFTP login sees."""

    rule = "remote dir"


class CalendarDataError(CprAbonnementError, ValueError):
    """The closure-date file is missing or has a line that is neither --MM-DD nor a date."""


class FilterDatabaseUnavailable(CprAbonnementError):
    """The filter database an Airflow task must use is not configured or not reachable.

    Never answered by falling back to an embedded file: delivering from an empty database
    would send every subscriber an empty file and mark the day processed.
    """


class SshProbeFailed(CprAbonnementError):
    """An SSH server did not answer a health probe with its banner and a key exchange."""


class BackupError(CprAbonnementError):
    """A backup or restore of the filter database failed or was refused; ``path`` names
    the backup file and ``database`` the database (its URL without the password), so
    the operator knows which of the two to look at."""

    def __init__(self, message: str, *, path: str | None = None,
                 database: str | None = None) -> None:
        self.path = path
        self.database = database
        super().__init__(message)


class DatabaseNotEmpty(BackupError):
    """A restore goes into an empty database only: restoring over tables that exist
    would mix two histories (or fail half-way), and ``objects`` names what is there."""

    def __init__(self, message: str, *, database: str, objects: list[str]) -> None:
        self.objects = objects
        super().__init__(message, database=database)


class BackupCorrupt(BackupError):
    """A backup file is not what its manifest says (size, SHA-256), or is no backup."""


class BackupRevisionUnknown(BackupError):
    """A backup's schema revision is unknown to this release (made by a newer one):
    restoring it would leave a database this release cannot migrate or read."""


class BackupToolFailed(BackupError):
    """``pg_dump`` or ``pg_restore`` is missing or ended with an error; ``stderr`` holds
    what it said, scrubbed of anything shaped like a PNR (a failing COPY quotes rows)."""

    def __init__(self, message: str, *, tool: str, stderr: str = "",
                 path: str | None = None, database: str | None = None) -> None:
        self.tool = tool
        self.stderr = scrub(stderr)
        detail = f": {self.stderr.strip()}" if self.stderr.strip() else ""
        super().__init__(f"{message}{detail}", path=path, database=database)


class RestoreMismatch(BackupError):
    """The restored database differs from the backup's manifest (schema revision or
    row counts): the restore is not to be trusted."""


class DeliveryError(CprAbonnementError):
    """A delivery to one subscriber failed; carries the subscriber and the file."""

    def __init__(self, message: str, *, subscriber: str, file_name: str) -> None:
        self.subscriber = subscriber
        self.file_name = file_name
        super().__init__(f"delivery of {file_name} to {subscriber}: {message}")


class DeltaRetired(DeliveryError):
    """The delta was removed from staging by retention after it was delivered; a
    re-delivery makes it again first (same bytes, from the staged extract)."""


class DeliveryConflict(DeliveryError):
    """A different file with the same name already exists at the destination."""


class MissingDeliveryTarget(DeliveryError):
    """The subscriber has no delivery target (fix the subscriber, no retry)."""


class DeliveryRefused(DeliveryError):
    """The target refused us for a reason a retry cannot fix (changed host key, bad login)."""


class ServiceWindowWait(CprAbonnementError):
    """A push delivery is due inside the subscriber's service window: not a failure;
    the deliver task waits (rescheduled, no worker slot held) until ``until``."""

    def __init__(self, message: str, *, subscriber: str, until) -> None:
        self.subscriber = subscriber
        self.until = until
        super().__init__(message)


class InvalidCertificate(FilterInputError):
    """A client certificate to register is not one: unparsable PEM/DER, no certificate,
    several, a CA certificate, or already expired."""

    rule = "certificate"


class InvalidServiceAgreement(FilterInputError):
    """A ServiceAgreementUUID is not a UUID."""

    rule = "service agreement"


class InvalidSshKey(FilterInputError):
    """An SSH public key to register for pick-up is refused: not one OpenSSH public key
    line, a type we do not accept (DSA, certificates, security keys), RSA below 2048
    bits, or a comment with control characters."""

    rule = "ssh key"


class InvalidDeliveryMode(FilterInputError):
    """A delivery mode other than ``push`` or ``pickup``, or settings that do not fit it."""

    rule = "delivery mode"


class InvalidPickupAccount(FilterInputError):
    """A pick-up account (login and folder name) must be 1-64 characters of lowercase
    letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit, and not a
    reserved name (:class:`ReservedPickupAccount`)."""

    rule = "pickup account"


class ReservedPickupAccount(InvalidPickupAccount):
    """A pick-up account named like a system or service account (``root``, ``sshd``,
    ``postgres`` ...) or like an existing Unix account that the pick-up sync did not
    make: the OpenSSH pick-up server logs each account in as the Unix account of that
    name, so such a name would hand that account's identity to an IT system's key.
    ``account`` is the name refused."""

    def __init__(self, message: str, *, account: str) -> None:
        self.account = account
        super().__init__(message)


class InvalidServiceWindow(FilterInputError):
    """A service window is not '<day(s)> HH:MM-HH:MM' (see
    :mod:`cpr_abonnement.onboarding.windows`)."""

    rule = "service window"


class InvalidRegistration(FilterInputError):
    """A registration document (``cprsub subscriber register``) breaks a rule; ``field``
    names where in the document (``contact.email``, ``supplier.cvr`` ...), ``rule`` which
    rule."""

    def __init__(self, message: str, *, field: str, rule: str = "registration") -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {message}")


class RegisteredToAnotherSystem(CprAbonnementError):
    """A certificate, service agreement, SSH key or pick-up account is already registered
    for another IT system: each names exactly one caller, so it cannot be registered twice.
    A registration document's push connection is refused the same way: the connection
    holds the other system's host and password. ``field`` names where in a registration
    document the item is (``delivery.account``), when one was registered."""

    rule = "registered to another system"

    def __init__(self, message: str, *, what: str, owner: str,
                 field: str | None = None) -> None:
        self.what = what
        self.owner = owner
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class NotAuthorised(CprAbonnementError, PermissionError):
    """A caller may not make this call (:func:`cpr_abonnement.api.auth.authorise`).

    ``check`` names the check that failed, one of :data:`NotAuthorised.CHECKS`; the
    message says it in words for the caller (never a PNR). ``system`` is the IT system
    the call was made for, when known (a refused look-up is logged under it).
    """

    CHECKS = ("certificate not registered", "certificate of another IT system",
              "service agreement", "service uuid", "token of another IT system",
              "administrator required", "IT system disabled", "no credential",
              "IT system token")

    def __init__(self, message: str, *, check: str, system: str | None = None) -> None:
        if check not in self.CHECKS:
            raise ValueError(f"unknown authorisation check {check!r}")
        self.check = check
        self.system = system
        super().__init__(message)


class SoapFault(CprAbonnementError):
    """A SOAP request answered with a SOAP 1.1 fault (``soap:<code>``); the message is
    scrubbed of anything shaped like a PNR, since faults echo what the caller sent."""

    def __init__(self, message: str, *, code: str = "Client") -> None:
        self.code = code
        super().__init__(scrub(message))


class PickupLate(CprAbonnementError):
    """Pick-up subscribers have not fetched their files for CPRSUB_PICKUP_ALERT_DAYS
    delivery days (raised by the housekeeping DAG to alert the data engineers)."""


class CertificatesExpiring(CprAbonnementError):
    """Client certificates reached an expiry threshold (90, 30, 7 days) or expired;
    raised by the housekeeping DAG to alert the data engineers, once per threshold."""


class PickupStrayFiles(CprAbonnementError):
    """Files a pick-up account created in its own ``IN/`` (empty: unconfined, OpenSSH's
    internal-sftp lets an open for writing create the name before the write is refused)
    were removed; raised by the housekeeping DAG to alert the data engineers, naming
    the accounts."""


class ConfinementUnavailable(CprAbonnementError):
    """The pick-up server cannot be put in its Landlock sandbox (no Landlock in this
    kernel): it does not start unconfined unless the operator says so explicitly."""

    def __init__(self, message: str, *, root: str) -> None:
        super().__init__(f"{message} (pick-up root {root})")
        self.root = root


class RolesNotApplicable(CprAbonnementError):
    """``cprsub db upgrade --grant-roles`` on a database without roles (SQLite): said
    plainly rather than ignored, since a deployment that asked for roles expected them."""


class InvalidRolePassword(CprAbonnementError):
    """A database role's password that would break the connection URL it goes into,
    or is too short to resist guessing; the message never repeats it."""
