"""Bringing an IT system in: its registration document, service windows, the readiness
check and its notices, filters imported from Serviceplatformen, its push connection."""
