"""Swagger UI and ReDoc for the subscription API, served from this server.

FastAPI's built-in ``/docs`` and ``/redoc`` load their JavaScript and CSS from a CDN,
which the platform's machines cannot reach: the pages stayed blank. The same assets,
pinned, come from the ``fastapi-offline`` wheel (MIT; Swagger UI under Apache 2.0,
ReDoc under MIT) and are served under ``/docs/assets``; ReDoc is told not to fetch
Google fonts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def asset_folder() -> Path:
    """Where the pinned Swagger UI and ReDoc bundles are installed."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def mount_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` with local assets; the app must be
    created with ``docs_url=None, redoc_url=None``. Links honour the mount's root path
    (``/cpr-abonnement`` under Airflow)."""
    app.mount(ASSETS, StaticFiles(directory=asset_folder()), name="docs-assets")

    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}", title=f"{app.title}: Swagger UI",
            swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}{app.openapi_url}", title=f"{app.title}: ReDoc",
            redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS}/favicon.png", with_google_fonts=False)
