"""The operator console as a FastAPI app: four pages, their JSON, and two SVG plots.

Mounted into Airflow's API server by ``plugins/cpr_console.py``, which also lists the
pages in Airflow's navigation. Airflow mounts plugin apps without any authentication,
so every route here depends on ``access``: the plugin passes Airflow's own auth-manager
check (:func:`cpr_abonnement.airflow_side.console_access.console_access`), so the console honours
whichever auth manager and roles the deployment configured. Pages are rendered on the
server with Jinja2 (autoescaped); the JSON endpoints return the same view models.
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations at runtime.
import datetime as dt
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import Engine

from cpr_abonnement import health as health_check
from cpr_abonnement.console import plots, views
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.delivery_calendar import local_today
from cpr_abonnement.replica import state as replica_state
from cpr_abonnement.replica.database import replica_engine
from cpr_abonnement.settings import Settings

#: The pages in navigation order: (path, title).
PAGES = (("deliveries", "Deliveries"), ("extracts", "Extracts"),
         ("subscribers", "Subscribers"), ("replica", "Replica"), ("health", "Health"))
#: Days of look-ups the Replica page plots.
LOOKUP_DAYS = 30
SVG = "image/svg+xml"


class _State:
    """The console's database engine, opened on the first request (not at import:
    Airflow imports plugins in processes that never serve the console)."""

    def __init__(self, factory: Callable[[], Engine],
                 clock: Callable[[], dt.datetime] | None,
                 replica_of: Callable[[Engine], Engine] = replica_engine) -> None:
        self.factory, self.replica_of = factory, replica_of
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    @cached_property
    def engine(self) -> Engine:
        return self.factory()

    @cached_property
    def replica(self) -> Engine:
        """The CPR replica's database: the filter database unless it has its own."""
        return self.replica_of(self.engine)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["human"] = plots.human
    return env


def create_console_app(engine_factory: Callable[[], Engine], *, access: Callable[..., Any],
                       links: views.TaskLinks | None = None,
                       may_clear: Callable[..., bool] = lambda: False,
                       replica_of: Callable[[Engine], Engine] = replica_engine,
                       clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """Build the console.

    :param engine_factory: opens the filter database (called once, on first use).
    :param access: a FastAPI dependency that raises 401/403 unless the caller may see
        the console; applied to every route.
    :param links: where each delivery's Airflow task log is (none: cells without links).
    :param may_clear: a FastAPI dependency: may the caller clear a delivery task (then
        the pages say to clear it there; nobody by default).
    :param replica_of: the CPR replica's database given the filter database's
        (default: ``CPRSUB_REPLICA_DB_URL``, else the filter database).
    :param clock: "now" (aware); default the system clock.
    """
    app = FastAPI(title="CPR Abonnement operator console", docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[Depends(access)])
    state = app.state.console = _State(engine_factory, clock, replica_of)
    env = _templates()

    def now() -> dt.datetime:
        return state.clock()

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        html = env.get_template(f"{name}.html").render(
            pages=PAGES, current=name, root=request.scope.get("root_path", ""), **context)
        return HTMLResponse(scrub(html))

    def today() -> dt.date:
        return local_today(now())

    def matrix(request: Request, settings: Settings | None = None) -> views.Matrix:
        q = request.query_params
        return views.delivery_matrix(
            state.engine, settings or Settings.from_env(), today=today(),
            page=_page_number(q.get("page")),
            failed_only=q.get("failed") == "1", late_only=q.get("late") == "1",
            subscriber=q.get("subscriber") or None, links=links)

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/deliveries")

    @app.get("/deliveries", response_class=HTMLResponse)
    def deliveries_page(request: Request,
                        clearable: bool = Depends(may_clear)) -> HTMLResponse:
        settings = Settings.from_env()
        m = matrix(request, settings)
        return page(request, "deliveries", m=m, plots=_volume_plots(state.engine, m.days),
                    runbook=settings.runbook_url,
                    late_days=settings.pickup_alert_days, clearable=clearable)

    @app.get("/api/deliveries")
    def deliveries_json(request: Request) -> JSONResponse:
        m = matrix(request)
        body = views.to_json(m)
        for row, data in zip(m.rows, body["rows"], strict=True):
            for day, cell in row.cells.items():
                data["cells"][day.isoformat()]["state"] = cell.state
        return JSONResponse(body)

    @app.get("/plots/deliveries.svg")
    def deliveries_plot(request: Request, metric: str = "persons") -> Response:
        if metric not in ("persons", "bytes"):
            raise HTTPException(422, "metric is persons or bytes")
        days = views.page_days(Settings.from_env(), today(),
                               _page_number(request.query_params.get("page")))
        return Response(_volume_plots(state.engine, days)[metric], media_type=SVG)

    @app.get("/extracts", response_class=HTMLResponse)
    def extracts_page(request: Request) -> HTMLResponse:
        rows = views.extracts(state.engine)
        timeline = views.chain_timeline(rows, Settings.from_env(), today=today())
        return page(request, "extracts", rows=rows, timeline=timeline,
                    size_plot=Markup(_size_plot(rows)))

    @app.get("/api/extracts")
    def extracts_json() -> JSONResponse:
        rows = views.extracts(state.engine)
        return JSONResponse({
            "extracts": views.to_json(rows),
            "timeline": views.to_json(views.chain_timeline(rows, Settings.from_env(),
                                                           today=today()))})

    @app.get("/plots/extracts.svg")
    def extracts_plot() -> Response:
        return Response(_size_plot(views.extracts(state.engine)), media_type=SVG)

    @app.get("/subscribers", response_class=HTMLResponse)
    def subscribers_page(request: Request) -> HTMLResponse:
        return page(request, "subscribers", rows=views.subscribers(state.engine))

    @app.get("/api/subscribers")
    def subscribers_json() -> JSONResponse:
        return JSONResponse(views.to_json(views.subscribers(state.engine)))

    @app.get("/replica", response_class=HTMLResponse)
    def replica_page(request: Request) -> HTMLResponse:
        first = today() - dt.timedelta(days=LOOKUP_DAYS - 1)
        days = [first + dt.timedelta(days=i) for i in range(LOOKUP_DAYS)]
        counts = replica_state.lookups_per_day(state.replica, first, today())
        plot = plots.stacked_bars("Person look-ups per day (SF1520 and REST)", days,
                                  {"look-ups": counts}, colours={"look-ups": plots.colour(0)})
        return page(request, "replica", r=replica_state.state(state.engine,
                                                              replica=state.replica),
                    total=sum(counts.values()), plot=Markup(plot))

    @app.get("/api/replica")
    def replica_json() -> JSONResponse:
        return JSONResponse(replica_state.state(state.engine, replica=state.replica)
                            .to_dict())

    @app.get("/health", response_class=HTMLResponse)
    def health_page(request: Request, clearable: bool = Depends(may_clear)) -> HTMLResponse:
        h = health_check.check(state.engine, now=now(), replica=state.replica)
        return page(request, "health", h=h, logs=views.undelivered_links(h.undelivered, links),
                    clearable=clearable)

    @app.get("/api/health")
    def health_json() -> JSONResponse:
        return JSONResponse(health_check.check(state.engine, now=now(), replica=state.replica)
                            .to_dict())

    return app


def _page_number(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError as exc:
        raise HTTPException(422, "page is a whole number") from exc


def _volume_plots(engine: Engine, days: list[dt.date]) -> dict[str, Markup]:
    """Persons and bytes delivered per day, stacked by subscriber."""
    persons: dict[str, dict[dt.date, float]] = {}
    size: dict[str, dict[dt.date, float]] = {}
    colours: dict[str, str] = {}
    for v in views.delivered_volumes(engine, days):
        persons.setdefault(v.subscriber, {})[v.day] = v.persons
        size.setdefault(v.subscriber, {})[v.day] = v.size_bytes
        colours[v.subscriber] = plots.colour(v.number)
    return {
        "persons": Markup(plots.stacked_bars("Persons delivered per day", days, persons,
                                             colours=colours)),
        "bytes": Markup(plots.stacked_bars("Bytes delivered per day", days, size, "B",
                                           colours=colours)),
    }


def _size_plot(rows: list[views.ExtractRow]) -> str:
    points = sorted({r.production_date: float(r.size_bytes) for r in reversed(rows)
                     if r.production_date and r.size_bytes is not None}.items())
    return plots.line("Extract size per production date", points, "B")
