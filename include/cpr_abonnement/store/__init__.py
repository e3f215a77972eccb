"""The filter database itself: its engine and clock, its tables, its migrations and its
backups. Every other room keeps its rows here; this room imports none of them (the
filter types register their own tables, :mod:`cpr_abonnement.filters`)."""
