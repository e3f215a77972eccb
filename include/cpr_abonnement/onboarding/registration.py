"""The registration of an IT system (the NOT0314 form) as one declarative document.

``cprsub subscriber register FILE.yaml`` and ``POST /v1/admin/registrations``
take the same document (YAML or JSON)::

    uuid: 6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001
    name: Aalborg Kommune - ESDH
    municipality: 851                   # served municipality (reference data; 1-4 digits)
    supplier: {name: Systemleverandøren A/S, cvr: "10150817"}
    service_agreements:                 # a UUID is an SF6002 (subscriptions) agreement
      - 11111111-2222-4333-8444-555555555555
      - {uuid: 22222222-3333-4444-8555-666666666666, service: sf1520}   # look-ups
    contact: {name: Jens Hansen, email: jens@leverandor.example, phone: "+45 12345678"}
    delivery:                           # push: to the IT system's SFTP server
      mode: push
      connection: sftp_aalborg_esdh     # the Airflow connection (created when login given)
      host: sftp.aalborg.example
      port: 22
      folder: /cpr/in
      host_key: ssh-ed25519 AAAA...     # pinned
      login: cpr                        # optional: create/update the connection with
      password_env: CPRSUB_SFTP_PASSWORD_AALBORG   # the password read from this variable
    # delivery: {mode: pickup, account: aalborg-esdh, ssh_keys: ["ssh-ed25519 AAAA... it@x"]}
    certificates: [ "-----BEGIN CERTIFICATE-----..." ]   # or {sha256: <hex>} of one registered
    service_windows: ["Saturdays 22:00-06:00", "first Tuesday of the month 18:00-23:00"]
    lookup_scope: subscribed            # optional: look-ups find only persons it subscribes

The document is the whole truth about the system: a service agreement, certificate or
SSH key it no longer lists is unregistered. This module only reads (:func:`load`: UTF-8
text, YAML, or JSON for the API), parses and validates (:func:`parse_document`; both in
:func:`read_document`, the one way the command line and the API read a document) and
renders a stored system back (:func:`render`); applying it is
:meth:`~cpr_abonnement.subscriptions.service.SubscriptionService.register`. Every
problem is an :class:`~cpr_abonnement.errors.InvalidRegistration` naming the field and
the rule. Secrets are never part of a document: a password is named by the environment
variable holding it, never given or printed. That variable's name must start with
:data:`PASSWORD_ENV_PREFIX`: the process loading a document holds other secrets in its
environment (Airflow's Fernet key, database passwords), and a document naming one of
those would have it stored as the SFTP password and sent to the host the document names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import yaml

from cpr_abonnement import reference
from cpr_abonnement.delivery import modes
from cpr_abonnement.errors import FilterInputError, InvalidRegistration
from cpr_abonnement.identities.certificates import (
    CertificateInfo,
    configured_client_ca,
    normalise_fingerprint,
    parse_certificate,
)
from cpr_abonnement.identities.ssh_keys import SshKeyInfo, parse_public_key
from cpr_abonnement.masking import scrub
from cpr_abonnement.onboarding import windows
from cpr_abonnement.pickup.names import validate_account_name
from cpr_abonnement.replica.scope import ALL, validate_scope
from cpr_abonnement.subscriptions import rules
from cpr_abonnement.subscriptions.rules import (
    DEFAULT_AGREEMENT_SERVICE,
    validate_agreement,
    validate_agreement_service,
    validate_uuid,
)

T = TypeVar("T")
#: CVR check weights (the modulus-11 rule: the weighted digit sum is divisible by 11).
CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(r"\+?[0-9 ()-]{8,20}")
_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
#: The only environment variables a document may name as holding an SFTP password.
PASSWORD_ENV_PREFIX = "CPRSUB_SFTP_PASSWORD_"
_PASSWORD_ENV = re.compile(re.escape(PASSWORD_ENV_PREFIX) + r"[A-Za-z0-9_]+")
_HOST = re.compile(r"[A-Za-z0-9.:-]{1,253}")
_TOP = ("uuid", "name", "municipality", "supplier", "service_agreements", "contact",
        "delivery", "certificates", "service_windows", "lookup_scope")
#: Service windows one system may register. Every push delivery checks them and follows
#: chains of them; a real SFTP server has a handful, and the count is checked before
#: any is parsed, so a document of 200,000 costs nothing.
MAX_SERVICE_WINDOWS = 50


@dataclass(frozen=True)
class PushTarget:
    """Where a push subscriber's files go; ``login`` and ``password_env`` only when the
    registration creates or updates the Airflow connection itself."""

    connection: str
    host: str
    port: int
    folder: str
    host_key: str
    login: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class Document:
    """A validated registration, normalised (4-digit municipality, canonical windows,
    lowercase UUIDs, parsed keys and certificates)."""

    uuid: str
    name: str
    municipality: str
    supplier_name: str
    cvr: str
    contact_name: str
    contact_email: str
    contact_phone: str
    mode: str
    push: PushTarget | None = None
    pickup_account: str | None = None
    #: (ServiceAgreementUUID, service) pairs; a plain UUID in the document is SF6002's.
    service_agreements: tuple[tuple[str, str], ...] = ()
    ssh_keys: tuple[SshKeyInfo, ...] = ()
    #: New certificates (parsed PEM) and fingerprints of ones already registered.
    certificates: tuple[CertificateInfo, ...] = ()
    certificate_refs: tuple[str, ...] = ()
    service_windows: tuple[str, ...] = field(default=())
    #: A mode whose target is a folder only: that folder.
    folder: str | None = None
    #: Whom its person look-ups may find: ``all`` (default) or ``subscribed``.
    lookup_scope: str = ALL

    @property
    def serves(self) -> str:
        """The municipality as the subscriber list shows it (``0851 Aalborg``)."""
        return f"{self.municipality} {reference.municipalities()[self.municipality].name}"

    def target_columns(self) -> dict[str, Any]:
        """The subscriber row's target fields this registration sets: its mode's."""
        spec = modes.get(self.mode)
        if spec.has_account:
            return {"pickup_account": self.pickup_account}
        if spec.needs_connection and self.push is not None:
            return {"sftp_conn_id": self.push.connection, "remote_dir": self.push.folder}
        return {"remote_dir": self.folder or "."}

    def profile(self) -> dict[str, Any]:
        """What the subscriber row keeps beyond its own columns (no secrets): stored as
        ``subscriber.registration`` and compared to decide whether anything changed."""
        push = self.push
        return {
            "municipality": self.municipality,
            "supplier": {"name": self.supplier_name, "cvr": self.cvr},
            "contact": {"name": self.contact_name, "email": self.contact_email,
                        "phone": self.contact_phone},
            "push": ({"host": push.host, "port": push.port, "host_key": push.host_key}
                     if push else None),
            "service_windows": list(self.service_windows),
        }


def _check(where: str, rule: str, action: Callable[[], T]) -> T:
    """Run a field's own validator, naming the field in what it refuses."""
    try:
        return action()
    except InvalidRegistration:
        raise
    except FilterInputError as exc:
        raise InvalidRegistration(str(exc), field=where, rule=rule) from exc


def _agreement(where: str, entry: Any) -> tuple[str, str]:
    """(UUID, service) of one ``service_agreements`` entry: a UUID (an SF6002
    agreement, as every document before look-ups wrote it) or ``{uuid, service}``."""
    if isinstance(entry, Mapping):
        entry = _mapping(entry, where, ("uuid", "service"))
        service = _check(f"{where}.service", "service agreement",
                         lambda: validate_agreement_service(
                             entry.get("service") or DEFAULT_AGREEMENT_SERVICE))
        uuid = _check(f"{where}.uuid", "service agreement",
                      lambda: validate_agreement(str(entry.get("uuid") or "")))
        return uuid, service
    return (_check(where, "service agreement", lambda: validate_agreement(str(entry))),
            DEFAULT_AGREEMENT_SERVICE)


def _mapping(doc: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise InvalidRegistration("must be a mapping of fields", field=where, rule="shape")
    unknown = sorted(set(map(str, doc)) - set(allowed))
    if unknown:
        raise InvalidRegistration(f"unknown field(s) {', '.join(unknown)}; expected "
                                  f"{', '.join(allowed)}", field=where, rule="shape")
    return doc


def _text(doc: Mapping[str, Any], key: str, where: str, *, limit: int = 200,
          required: bool = True) -> str | None:
    value = doc.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRegistration("is required", field=where, rule="required")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidRegistration("must be text", field=where, rule="shape")
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidRegistration(f"is longer than {limit} characters", field=where,
                                  rule="length")
    return text


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise InvalidRegistration("must be a list", field=where, rule="shape")
    return value


def valid_cvr(cvr: str) -> bool:
    """A CVR number: 8 digits, not starting with 0, weighted sum divisible by 11."""
    if not re.fullmatch(r"[1-9]\d{7}", cvr):
        return False
    return sum(int(d) * w for d, w in zip(cvr, CVR_WEIGHTS, strict=True)) % 11 == 0


def _cvr(text: str) -> str:
    digits = text.replace(" ", "")
    if not re.fullmatch(r"\d{8}", digits):
        raise InvalidRegistration("a CVR number is 8 digits", field="supplier.cvr",
                                  rule="cvr")
    if not valid_cvr(digits):
        raise InvalidRegistration(f"{digits} fails the CVR check (modulus 11)",
                                  field="supplier.cvr", rule="cvr")
    return digits


def _municipality(value: Any) -> str:
    text = str(value if value is not None else "").strip()
    if not re.fullmatch(r"\d{1,4}", text):
        raise InvalidRegistration("a municipality code is 1-4 digits (e.g. 851)",
                                  field="municipality", rule="municipality code")
    code = text.zfill(4)
    if code not in reference.municipalities():
        raise InvalidRegistration(f"{code} is not a municipality code in the reference "
                                  "data", field="municipality", rule="municipality code")
    return code


def _contact(doc: Any) -> tuple[str, str, str]:
    contact = _mapping(doc, "contact", ("name", "email", "phone"))
    name = _text(contact, "name", "contact.name")
    email = _text(contact, "email", "contact.email", limit=254)
    if not _EMAIL.fullmatch(email):
        raise InvalidRegistration(f"{email!r} is not an e-mail address", field="contact.email",
                                  rule="e-mail")
    phone = _text(contact, "phone", "contact.phone", limit=30)
    if not _PHONE.fullmatch(phone):
        raise InvalidRegistration("a phone number is 8-20 digits, spaces, +, (, ) or -",
                                  field="contact.phone", rule="phone")
    return name, email, phone


def _port(value: Any) -> int:
    if value is None:
        return 22
    if isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536:
        raise InvalidRegistration("a port is a number 1-65535", field="delivery.port",
                                  rule="port")
    return int(value)


def _host_key(value: str) -> str:
    key = _check("delivery.host_key", "host key", lambda: parse_public_key(value))
    return f"{key.key_type} {key.key_data}"


def _push(doc: Mapping[str, Any]) -> PushTarget:
    conn = _text(doc, "connection", "delivery.connection", limit=250)
    if not _CONN_ID.fullmatch(conn):
        raise InvalidRegistration("an Airflow connection id is letters, digits, _ . -",
                                  field="delivery.connection", rule="connection id")
    host = _text(doc, "host", "delivery.host", limit=253)
    if not _HOST.fullmatch(host):
        raise InvalidRegistration(f"{host!r} is not a host name or address",
                                  field="delivery.host", rule="host")
    folder = _folder(doc)
    login = _text(doc, "login", "delivery.login", limit=100, required=False)
    password_env = _text(doc, "password_env", "delivery.password_env", required=False)
    if bool(login) != bool(password_env):
        raise InvalidRegistration("login and password_env go together (the connection is "
                                  "then created or updated; leave both out to name an "
                                  "existing one)", field="delivery.password_env",
                                  rule="credentials")
    if password_env and not _PASSWORD_ENV.fullmatch(password_env):
        raise InvalidRegistration(
            f"names the environment variable holding the password, which must start with "
            f"{PASSWORD_ENV_PREFIX} (e.g. {PASSWORD_ENV_PREFIX}AALBORG); no other variable "
            "of this process may be read", field="delivery.password_env", rule="credentials")
    return PushTarget(conn, host, _port(doc.get("port")), folder,
                      _host_key(_text(doc, "host_key", "delivery.host_key", limit=8192)),
                      login, password_env)


@dataclass(frozen=True)
class _Target:
    """The ``delivery`` section as read for its mode."""

    push: PushTarget | None = None
    account: str | None = None
    keys: tuple[SshKeyInfo, ...] = ()
    folder: str | None = None


def _delivery(spec: modes.ModeSpec, section: Mapping[str, Any], uuid: str) -> _Target:
    """Read the fields of ``spec``'s target from the document's ``delivery`` section: a
    server to push to, a pick-up account with its keys, or a folder."""
    if spec.needs_connection:
        return _Target(push=_push(section))
    if spec.has_account:
        raw = _text(section, "account", "delivery.account", limit=64, required=False)
        account = _check("delivery.account", "pickup account",
                         lambda: validate_account_name(raw)) if raw else uuid
        keys = tuple({k.fingerprint: k for k in (
            _check(f"delivery.ssh_keys[{i}]", "ssh key", lambda k=k: parse_public_key(str(k)))
            for i, k in enumerate(_list(section, "ssh_keys", "delivery.ssh_keys")))}.values())
        return _Target(account=account, keys=keys)
    return _Target(folder=_folder(section))


def _folder(section: Mapping[str, Any]) -> str:
    return _check("delivery.folder", "remote dir",
                  lambda: rules.remote_dir(_text(section, "folder", "delivery.folder",
                                                 limit=500, required=False) or "."))


def _certificates(items: list[Any], now) -> tuple[tuple[CertificateInfo, ...],
                                                    tuple[str, ...]]:
    new, refs = {}, {}
    issuers = configured_client_ca()
    for i, item in enumerate(items):
        where = f"certificates[{i}]"
        if isinstance(item, Mapping):
            sha = _mapping(item, where, ("sha256", "subject", "not_after")).get("sha256")
            value = _check(where, "certificate", lambda s=sha: normalise_fingerprint(s or ""))
            refs[value] = value
        else:
            cert = _check(where, "certificate",
                          lambda c=item: parse_certificate(str(c), now=now,
                                                              issuers=issuers))
            new[cert.sha256] = cert
    return tuple(new.values()), tuple(r for r in refs if r not in new)


def parse_document(doc: Any, *, now=None) -> Document:
    """Validate a registration document (already read from YAML or JSON).

    ``now`` (naive UTC) judges certificate expiry; default the process clock.
    """

    top = _mapping(doc, "document", _TOP)
    uuid = _check("uuid", "uuid", lambda: validate_uuid(_text(top, "uuid", "uuid")))
    name = _text(top, "name", "name")
    supplier = _mapping(top.get("supplier") or {}, "supplier", ("name", "cvr"))
    supplier_name = _text(supplier, "name", "supplier.name")
    cvr = _cvr(_text(supplier, "cvr", "supplier.cvr", limit=20))
    contact = _contact(top.get("contact") or {})
    agreements = tuple(dict(
        _agreement(f"service_agreements[{i}]", a)
        for i, a in enumerate(_list(top, "service_agreements", "service_agreements"))
    ).items())
    delivery = top.get("delivery")
    if not isinstance(delivery, Mapping):
        raise InvalidRegistration(
            f"is required: a mode ({', '.join(modes.names())}) and its fields",
            field="delivery", rule="required")
    spec = _check("delivery.mode", "delivery mode",
                  lambda: modes.get(str(delivery.get("mode"))))
    target = _delivery(spec, _mapping(delivery, "delivery", ("mode", *spec.document_keys)),
                       uuid)
    certs, refs = _certificates(_list(top, "certificates", "certificates"), now)
    given = _list(top, "service_windows", "service_windows")
    if len(given) > MAX_SERVICE_WINDOWS:
        raise InvalidRegistration(f"{len(given)} windows; at most {MAX_SERVICE_WINDOWS} "
                                  "may be registered", field="service_windows", rule="limit")
    found = [str(w) for w in _check("service_windows", "service window",
                                    lambda: windows.parse_all(str(w) for w in given))]
    scope = _check("lookup_scope", "look-up scope",
                   lambda: validate_scope(str(top.get("lookup_scope") or ALL)))
    return Document(uuid, name, _municipality(top.get("municipality")), supplier_name, cvr,
                    *contact, spec.name, target.push, target.account, agreements,
                    target.keys, certs, refs, tuple(found), target.folder, scope)


def _text_of(data: bytes) -> str:
    """The document as text. A document is UTF-8 by contract (YAML's own default); a
    Latin-1 file or a binary one given by mistake is named as such, at the first byte
    that is not UTF-8, instead of failing deep inside the decoder."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidRegistration(
            f"must be UTF-8 text (YAML or JSON); byte {exc.start} (0x{data[exc.start]:02x}) "
            "is not UTF-8", field="document", rule="encoding") from exc


def _duplicate(key: Any, *, field: str, first: int | None = None) -> InvalidRegistration:
    where = f" (first on line {first})" if first is not None else ""
    return InvalidRegistration(f"duplicate key '{scrub(str(key))[:60]}'{where}: each key may "
                               "be given once", field=field, rule="duplicate key")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (any depth). PyYAML
    keeps the last one silently: a document reading ``uuid: A`` at the top and
    ``uuid: C`` further down would register C while its reader sees A."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                          ) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *defaults`` is there to be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: the loader's own check refuses it below
                continue
            if first is not None:
                raise _duplicate(key, field=f"line {line}", first=first)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (as :class:`_UniqueKeyLoader`); the
    JSON reader does not say where, so the key alone is named."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _duplicate(key, field="document")
        found[key] = value
    return found


def load(data: bytes, *, syntax: Literal["yaml", "json"] = "yaml") -> Any:
    """The document's data, before validation: a file is YAML (a JSON file is YAML
    too), an API request body JSON (read as JSON, not YAML 1.1, so every valid JSON
    body is read as its sender meant it). A key given twice in one mapping is refused.
    Every problem is an :class:`~cpr_abonnement.errors.InvalidRegistration` naming the
    line where known."""
    text = _text_of(data)
    try:
        return _parsed(text, syntax)
    except RecursionError as exc:  # ``[[[[…`` thousands deep: no document is
        raise InvalidRegistration("nested too deeply to be a registration document",
                                  field="document", rule="syntax") from exc


def _parsed(text: str, syntax: Literal["yaml", "json"]) -> Any:
    if syntax == "json":
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            raise InvalidRegistration(f"not JSON ({exc.msg})", field=f"line {exc.lineno}",
                                      rule="syntax") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: data types only
    except yaml.reader.ReaderError as exc:  # a control character: binary, not text
        offset = len(text[:exc.position].encode("utf-8"))
        raise InvalidRegistration(f"must be UTF-8 text (YAML or JSON); byte {offset} "
                                  f"(character #x{exc.character:02x}) is not text",
                                  field="document", rule="encoding") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        raise InvalidRegistration(f"not YAML or JSON ({getattr(exc, 'problem', exc)})",
                                  field=f"line {where.line + 1}" if where else "document",
                                  rule="syntax") from exc


def read_document(data: bytes, *, syntax: Literal["yaml", "json"] = "yaml",
                  now=None) -> Document:
    """A validated registration from a file's or a request body's bytes: :func:`load`,
    then :func:`parse_document`."""
    return parse_document(load(data, syntax=syntax), now=now)


def render(info, profile: Mapping[str, Any] | None, ssh_key_lines: list[str]
           ) -> dict[str, Any]:
    """A stored IT system as a registration document (what ``show --format yaml``
    prints): registering it again changes nothing. No secret is in it: a connection is
    named, its password never shown."""
    profile = profile or {}
    out: dict[str, Any] = {"uuid": info.uuid, "name": info.name,
                           "municipality": profile.get("municipality"),
                           "supplier": profile.get("supplier"),
                           "service_agreements": [
                               a if service == DEFAULT_AGREEMENT_SERVICE
                               else {"uuid": a, "service": service}
                               for a, service in info.agreement_services],
                           "contact": profile.get("contact")}
    spec = modes.get(info.delivery_mode)
    if spec.has_account:
        out["delivery"] = {"mode": spec.name, "account": info.pickup_account,
                           "ssh_keys": list(ssh_key_lines)}
    elif spec.needs_connection:
        push = profile.get("push") or {}
        out["delivery"] = {"mode": spec.name, "connection": info.sftp_conn_id,
                           "host": push.get("host"), "port": push.get("port"),
                           "folder": info.remote_dir, "host_key": push.get("host_key")}
    else:
        out["delivery"] = {"mode": spec.name, "folder": info.remote_dir}
    out["certificates"] = [{"sha256": c.sha256, "subject": c.subject,
                            "not_after": c.not_after.isoformat()} for c in info.certificates]
    out["service_windows"] = list(profile.get("service_windows") or [])
    if info.lookup_scope != ALL:
        out["lookup_scope"] = info.lookup_scope
    return out
