"""The API reference page at ``/docs``: Swagger UI over ``/openapi.json``, served from this process.

The assets come from the ``swagger-ui-bundle`` package (Swagger UI's static build in the wheel), so the
page works offline and loads nothing from another site; its content security policy allows scripts
and connections to this origin only. Public, as ``/openapi.json`` is: it shows the document, no data;
"Try it out" needs a key (the page's Authorize button), as every /api/ call does.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_file

ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>webcompat-ml query API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""
INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                               presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});
};
"""


def _answer(body, mimetype: str) -> Response:
    response = body if isinstance(body, Response) else Response(body, mimetype=mimetype)
    response.headers["Content-Security-Policy"] = POLICY
    return response


def add_routes(bp: Blueprint) -> None:
    """``GET /docs`` (the page) and ``GET /docs/<asset>`` (its script, style and start-up script)."""

    @bp.get("/docs")
    def docs():
        return _answer(PAGE, "text/html")

    @bp.get("/docs/<asset>")
    def docs_asset(asset: str):
        if asset == "init.js":
            return _answer(INIT, "text/javascript")
        if asset not in ASSETS:
            return Response(f"no such asset {asset[:60]!r}\n", 404, mimetype="text/plain")
        from swagger_ui_bundle import swagger_ui_path

        response = send_file(swagger_ui_path / asset, mimetype=ASSETS[asset], max_age=86400)
        return _answer(response, ASSETS[asset])
