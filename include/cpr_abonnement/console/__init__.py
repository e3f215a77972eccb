"""The operator console: what a data engineer needs beyond Airflow's grid, on four pages.

:mod:`.views` reads the filter database (ledger, extract registry, extract checks,
subscribers, audit) into plain view models; :mod:`.plots` draws them as SVG on the
server (the machines are offline: no chart library, no CDN); :mod:`.app` serves the
pages (Jinja2, server-side HTML) and their JSON. Nothing here imports Airflow: who may
see the console and where a delivery's task log lives are handed in by the plugin
(``plugins/cpr_console.py``) from :mod:`cpr_abonnement.airflow_side.console_access`.
"""
