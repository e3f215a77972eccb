"""``python -m cpr_abonnement.devsftp`` (README, docker-compose), kept at its documented name.

Only an entry point: the embedded SFTP server is :mod:`cpr_abonnement.dev.devsftp`,
apart from the shipped package, and no shipped module imports either.
"""

from cpr_abonnement.dev.devsftp import main

if __name__ == "__main__":
    raise SystemExit(main())
