"""The one app factory. ``uvicorn --factory clarity.app:create_app`` or ``clarity serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

from clarity import __version__
from clarity.alerts.delivery.router import stream_router as alert_stream_router
from clarity.alerts.delivery.router import webhooks_router
from clarity.alerts.delivery.service import AlertDelivery
from clarity.alerts.router import patient_router as patient_alerts_router
from clarity.alerts.router import router as alerts_router
from clarity.alerts.rules_router import router as alert_rules_router
from clarity.alerts.runner import AlertRunner
from clarity.analytics.router import router as analytics_router
from clarity.assessments.router import instruments_router
from clarity.assessments.router import router as assessments_router
from clarity.audit.router import router as audit_router
from clarity.auth.dependencies import declared_access, public
from clarity.auth.router import router as auth_router
from clarity.biometrics.maintenance import PartitionKeeper
from clarity.biometrics.router import router as biometrics_router
from clarity.clinical.router import catalogue_router as medication_catalogue_router
from clarity.clinical.router import router as clinical_router
from clarity.config import Settings, get_settings
from clarity.consent.router import router as consent_router
from clarity.errors import install_error_handlers
from clarity.fhir.router import router as fhir_router
from clarity.health.router import router as health_router
from clarity.http import RequestMiddleware
from clarity.imports.router import router as imports_router
from clarity.imports.runner import ImportRunner
from clarity.logging import configure_logging, get_logger
from clarity.migrate import check_at_head
from clarity.ml.registry.router import router as models_router
from clarity.notes.router import router as notes_router
from clarity.organizations import service as organizations
from clarity.organizations.router import router as organization_router
from clarity.patients.router import break_glass_router
from clarity.patients.router import router as patients_router
from clarity.predictions.router import router as predictions_router
from clarity.research.router import router as research_router
from clarity.runtime import Runtime
from clarity.users.router import router as users_router

log = get_logger(__name__)

API_PREFIX = "/api/v1"
# Starlette routes that are not API endpoints and are open by design.
OPEN_NON_API_ROUTES = frozenset({"/openapi.json", "/static/docs"})
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def walk_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route with its full path, descending into included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included-router node
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from walk_routes(included.routes, prefix + getattr(context, "prefix", ""))
        else:
            yield prefix + getattr(route, "path", ""), route


def undeclared_routes(app: FastAPI) -> list[str]:
    """Routes that declare neither a permission nor a named public reason."""
    missing: list[str] = []
    for path, route in walk_routes(app.routes):
        if isinstance(route, APIRoute):
            calls = [d.call for d in route.dependant.dependencies if d.call is not None]
            if not declared_access(calls):
                missing.append(f"{sorted(route.methods or ())} {path}")
        elif path not in OPEN_NON_API_ROUTES:
            missing.append(path)
    return missing


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    runtime = Runtime.build(settings)  # refuses unsafe production settings, in one line
    imports = ImportRunner(
        runtime.db, runtime.outbox.notify, settings.import_path, settings.import_stale_seconds
    )
    alerts = AlertRunner(runtime)
    delivery = AlertDelivery(runtime)
    partitions = PartitionKeeper(runtime.db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await check_at_head(runtime.db.engine)
            if settings.is_sqlite:
                async with runtime.db.session(system=True) as session:
                    if await organizations.ensure_default(session, settings.default_organization):
                        await session.commit()
            log.info(
                "service.started",
                environment=settings.environment.value,
                database="sqlite" if settings.is_sqlite else "postgresql",
                cache=runtime.cache.backend,
                broker=runtime.bus.name,
            )
            await imports.start()
            alerts.start()
            await delivery.start()
            partitions.start()
            yield
        finally:
            await partitions.stop()
            await delivery.stop()
            await alerts.stop()
            await imports.stop()
            await runtime.stop()
            log.info("service.stopped")

    app = FastAPI(
        title="Clarity",
        version=__version__,
        summary="Digital-twin backend for psychiatric care and research.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.import_runner = imports
    app.state.alert_runner = alerts
    app.state.alert_delivery = delivery
    app.state.partition_keeper = partitions
    install_error_handlers(app)
    app.include_router(health_router)
    for router in (
        auth_router,
        users_router,
        audit_router,
        organization_router,
        patients_router,
        break_glass_router,
        research_router,
        notes_router,
        consent_router,
        instruments_router,
        assessments_router,
        clinical_router,
        medication_catalogue_router,
        fhir_router,
        biometrics_router,
        analytics_router,
        imports_router,
        alert_stream_router,  # before alerts_router: /alerts/stream, not /alerts/{alert_id}
        webhooks_router,
        alerts_router,
        patient_alerts_router,
        alert_rules_router,
        models_router,
        predictions_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    _mount_docs(app)
    app.add_middleware(
        RequestMiddleware, settings=settings, cache=runtime.cache, tokens=runtime.tokens
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError(f"routes without a declared permission: {', '.join(missing)}")
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI served from bundled assets: no CDN, works on a closed network."""
    app.mount("/static/docs", StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False, dependencies=[public("API documentation")])
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Clarity API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
