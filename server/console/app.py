"""The console's routes: sign-in, the pages and their JSON data.

Sign-in checks the user name and password against the same SCRAM verifiers as
the wire protocol, through the same code (``server.security.Exchange``,
the cleartext-password method): an unknown user, a role that cannot log in and
a wrong password fail alike, after the same work. Under ``--auth trust`` the
console admits loopback clients without a password, as psql is admitted there
(and, as there, every such client is a superuser); other clients are refused.
Remote clients need TLS when ``--tls-required-remote`` is on, as on the wire.

The session is a cookie signed with a key derived from the server secret
(Starlette's SessionMiddleware, itsdangerous): HttpOnly, SameSite=Strict,
Secure under TLS, valid for ``SESSION_HOURS`` from sign-in. Each request checks
again that the user still exists and may log in.

Read-only: the only form is sign-in/sign-out; pages and data run the
statements of ``server.console.queries`` as the signed-in user.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from server.console import pages, queries
from server.engine import Engine
from server.errors import ServerError
from server.security.auth import MAX_AUTH_MESSAGE, Exchange, is_loopback
from server.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
SESSION_HOURS = 8
COOKIE = "quackml_console"
_HEADERS = {
    # nothing from elsewhere: scripts, styles and images are the console's own
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Gate:
    """Who the request is from, decided as the wire protocol decides it."""

    def __init__(self, engine: Engine, settings: Settings, secret: bytes):
        self.engine = engine
        self.settings = settings
        self.secret = secret

    def refusal(self, request: Request) -> str | None:
        """Why this client may not use the console at all (None: it may)."""
        loopback = is_loopback(request.client.host if request.client else "")
        if not loopback and self.settings.tls_required_remote and \
                request.url.scheme != "https":
            return "connections from other machines must use TLS (set --tls-cert and --tls-key)"
        if self.settings.auth == "trust" and not loopback:
            return "trust authentication admits loopback clients only; set --auth scram-sha-256"
        return None

    def check_password(self, user: str, password: str) -> bool:
        record = self.engine.users.get(user)
        exchange = Exchange.start(user, record, "password", self.secret)
        try:
            exchange.feed(password.encode("utf-8")[:MAX_AUTH_MESSAGE - 1] + b"\x00")
        except ServerError:
            return False
        return exchange.done

    def user(self, request: Request) -> str | None:
        """The signed-in user of a request, if the session is valid still."""
        user = request.session.get("user")
        since = request.session.get("since")
        if not isinstance(user, str) or not isinstance(since, int | float):
            return None
        if time.time() - since > SESSION_HOURS * 3600 or self.refusal(request) is not None:
            return None
        if self.settings.auth != "trust":
            record = self.engine.users.get(user)
            if record is None or record.verifier is None or not record.can_login:
                return None
        return user


def make_app(engine: Engine, settings: Settings, secret: bytes) -> Starlette:
    gate = Gate(engine, settings, secret)
    trust = settings.auth == "trust"

    def client(request: Request) -> str | None:
        return request.client.host if request.client else None

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status, headers=_HEADERS)

    def data(payload: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(payload, status, headers=_HEADERS)

    def signin_page(request: Request) -> Response:
        refusal = gate.refusal(request)
        if refusal is None and gate.user(request) is not None:
            return RedirectResponse("/", 303)
        return html(pages.signin(trust, settings.superuser, refusal),
                    403 if refusal else 200)

    async def signin(request: Request) -> Response:
        refusal = gate.refusal(request)
        if refusal is not None:
            return html(pages.signin(trust, settings.superuser, refusal), 403)
        body = (await request.body())[:8192].decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        user = form.get("user", "").strip()
        password = form.get("password", "")
        ok = bool(user) and (trust or gate.check_password(user, password))
        if not ok:
            return html(pages.signin(trust, user or settings.superuser, None,
                                     f'password authentication failed for user "{user}"'),
                        401)
        request.session.clear()
        request.session.update({"user": user, "since": int(time.time())})
        return RedirectResponse("/", 303)

    def signout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/signin", 303)

    def page(render: Any) -> Any:
        """A page route: signed-in users only (others go to the sign-in page)."""
        def endpoint(request: Request) -> Response:
            user = gate.user(request)
            if user is None:
                return RedirectResponse("/signin", 303)
            with queries.viewer(engine, user, client(request)) as v:
                return render(request, v)  # type: ignore[no-any-return]
        return endpoint

    def api(render: Any) -> Any:
        """A data route: 401 without a valid session."""
        def endpoint(request: Request) -> Response:
            user = gate.user(request)
            if user is None:
                return data({"error": "not signed in"}, 401)
            with queries.viewer(engine, user, client(request)) as v:
                return data(render(request, v))
        return endpoint

    def models_page(request: Request, v: queries.Viewer) -> Response:
        return html(pages.models(queries.model_list(v)))

    def model_page(request: Request, v: queries.Viewer) -> Response:
        schema, name = request.path_params["schema"], request.path_params["name"]
        try:
            info = queries.model_page(v, schema, name, request.query_params.get("series"))
        except queries.NotVisible:
            return html(pages.not_found(v.user, schema, name), 404)
        return html(pages.model(v.user, info))

    def models_data(request: Request, v: queries.Viewer) -> Any:
        return queries.model_list(v)

    def model_data(request: Request, v: queries.Viewer) -> Any:
        schema, name = request.path_params["schema"], request.path_params["name"]
        try:
            return queries.model_page(v, schema, name, request.query_params.get("series"))
        except queries.NotVisible:
            return {"error": f'model "{schema}.{name}" does not exist or you may not see it'}

    def model_data_endpoint(request: Request) -> Response:
        user = gate.user(request)
        if user is None:
            return data({"error": "not signed in"}, 401)
        with queries.viewer(engine, user, client(request)) as v:
            payload = model_data(request, v)
        return data(payload, 404 if "error" in payload and "charts" not in payload else 200)

    routes = [
        Route("/", page(models_page)),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/models/{schema}/{name}", page(model_page)),
        Route("/api/models", api(models_data)),
        Route("/api/models/{schema}/{name}", model_data_endpoint),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    key = hmac.new(secret, b"quackml console session", hashlib.sha256).hexdigest()
    middleware = [Middleware(SessionMiddleware, secret_key=key, session_cookie=COOKIE,
                             max_age=SESSION_HOURS * 3600, same_site="strict",
                             https_only=bool(settings.tls_cert and settings.tls_key))]
    return Starlette(routes=routes, middleware=middleware)
