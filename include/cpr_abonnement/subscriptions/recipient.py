"""A subscriber as the rest of the code sees it: who it is and where its files go.

There is one domain shape of a subscriber, :class:`Recipient`; the ORM row
(:class:`~cpr_abonnement.store.models.Subscriber`) stays inside the store, which
hands out ``Recipient`` values:

* the filter snapshot holds one per active subscriber (its position in the list is the
  subscriber's position in the selection), and the filter step, the ``.metadata`` and
  the delivery target (:func:`cpr_abonnement.delivery.target_of`) read it;
* :class:`~cpr_abonnement.subscriptions.service.SubscriberDetails` is a ``Recipient``
  plus what only operators ask for (state, certificates, agreements, SSH keys), which
  costs queries per subscriber a daily run over every subscriber should not pay.
"""

from __future__ import annotations

from dataclasses import dataclass

from cpr_abonnement.delivery import modes


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber (IT system) and how it receives its files."""

    #: UserSystemUUID.
    uuid: str
    name: str
    #: Push: the Airflow SSH/SFTP connection and the folder on that server.
    sftp_conn_id: str | None
    remote_dir: str
    #: A registered delivery mode's name (:mod:`cpr_abonnement.delivery.modes`).
    delivery_mode: str = modes.DEFAULT
    #: The pick-up login (kept while in push mode, but then without an account).
    pickup_account: str | None = None

    @property
    def metadata_recipient(self) -> str:
        """Who the ``.metadata`` names as ``Recipients``: the pick-up account (the login
        a reader such as spsftp checks for), for push the UserSystemUUID."""
        spec = modes.find(self.delivery_mode)
        has_account = spec is not None and spec.has_account
        return self.pickup_account if has_account and self.pickup_account else self.uuid
