"""Pick-up delivery: subscribers fetch their files from our own SFTP server, as from
Serviceplatformen since 2016 (issue 13).

:mod:`~cpr_abonnement.pickup.accounts` answers who may log in with which keys, from the
filter database; the delivery mode that places the files is
:mod:`cpr_abonnement.delivery.pickup`.
"""

#: Where a subscriber's files are, inside its folder (here, not in :mod:`.server`, so
#: what only needs the layout, such as a delivery task, does not import the server's
#: asyncssh).
INBOX = "IN"
