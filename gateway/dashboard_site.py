"""The web dashboard's own port: the built React app (``js/dashboard/dist``) and the one
fact it cannot know by itself, the deployment's URL.

The dashboard is a client of the API port like any other (the official ``convex``
client with the admin key), so this app serves files only:

    GET /                         302 to /dashboard/
    GET /dashboard/config.json    {"deploymentUrl": <the API URL>}, never cached (bound to
                                  every address, by the host name the browser used)
    GET /dashboard/assets/<file>  hashed build output, cached for a year (immutable)
    GET /dashboard, /dashboard/…  index.html (client-side routes), never cached

Without a build (``make setup`` not run) every dashboard path answers 503 with the
command that builds it, rather than a page that never loads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

DIST = Path(__file__).resolve().parent.parent / "js" / "dashboard" / "dist"
NOT_BUILT = "The dashboard is not built: run `make setup`."
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"


def dashboard_app(deployment_url: Callable[[], str], dist: Path = DIST) -> Starlette:
    """The dashboard site; ``deployment_url()`` is asked per request (the API port is
    bound after this one)."""
    assets = (dist / "assets").resolve()

    async def root(request: Request) -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    async def config(request: Request) -> Response:
        url = _reachable(deployment_url(), request.url.hostname)
        return JSONResponse({"deploymentUrl": url}, headers={"Cache-Control": NO_CACHE})

    async def asset(request: Request) -> Response:
        if not (dist / "index.html").is_file():
            return _not_built()
        path = (assets / request.path_params["path"]).resolve()
        if not path.is_relative_to(assets) or not path.is_file():
            return PlainTextResponse("Not found.", status_code=404)
        return FileResponse(path, headers={"Cache-Control": IMMUTABLE})

    async def page(request: Request) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return _not_built()
        return FileResponse(index, headers={"Cache-Control": NO_CACHE})

    return Starlette(
        routes=[
            Route("/", root),
            Route("/dashboard/config.json", config),
            Route("/dashboard/assets/{path:path}", asset),
            Route("/dashboard", page),
            Route("/dashboard/{path:path}", page),
        ]
    )


def _reachable(api_url: str, dashboard_host: str | None) -> str:
    """The API URL as the browser can reach it: a server bound to every address
    (0.0.0.0, ::) is reached by the host name the browser used for the dashboard."""
    parts = urlsplit(api_url)
    if parts.hostname not in ("0.0.0.0", "::") or not dashboard_host:
        return api_url
    host = f"[{dashboard_host}]" if ":" in dashboard_host else dashboard_host
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


def _not_built() -> Response:
    return PlainTextResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": NO_CACHE})
