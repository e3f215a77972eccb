"""``python -m cpr_abonnement.demo`` (README command 1), kept at its documented name.

Only an entry point: the demo is :mod:`cpr_abonnement.dev.demo`, apart from the shipped
package, and no shipped module imports either.
"""

from cpr_abonnement.dev.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
