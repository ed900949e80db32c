"""Swagger UI for ``openapi.yaml`` on SWAGGER_PORT (8082), with its assets from the swagger-ui-bundle package
(nothing is fetched from a CDN). ``python -m gateway.docs``."""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, file, html, json
from swagger_ui_bundle import swagger_ui_path

from gateway.settings import DocsSettings
from servicekit import logs

SPEC = Path(__file__).resolve().parents[1] / "openapi.yaml"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Gozon API</title>
<link rel="stylesheet" href="/assets/swagger-ui.css">
<link rel="icon" href="/assets/favicon-32x32.png"></head>
<body><div id="ui"></div>
<script src="/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.yaml", dom_id: "#ui", tryItOutEnabled: true});</script>
</body></html>"""


def create_app() -> Sanic:
    app = Sanic("swagger", configure_logging=False)
    app.config.OAS = False
    app.static("/assets", swagger_ui_path, name="assets")

    @app.get("/")
    async def index(_request: Request) -> HTTPResponse:
        return html(PAGE)

    @app.get("/openapi.yaml")
    async def spec(_request: Request) -> HTTPResponse:
        return await file(SPEC, mime_type="application/yaml")

    @app.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok", "service": "swagger"})

    return app


if __name__ == "__main__":
    settings = DocsSettings.from_env()
    logs.configure(settings.log_level)
    create_app().run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        motd=False,
        access_log=False,
    )
