"""For a developer's machine, not for production: the demo (README command 1) and the
embedded SFTP server it and the tests push to.

Nothing in the shipped package imports this sub-package (``tests/test_layering.py``);
``python -m cpr_abonnement.demo`` and ``python -m cpr_abonnement.devsftp`` stay as entry
points that only start what is here.
"""
