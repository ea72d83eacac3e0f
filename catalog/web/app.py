"""The ASGI application: settings, the access guard, security headers, and serving it with uvicorn."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.errors import UsageError
from catalog.web import PACKAGE_DIR
from catalog.web.thumbnails import ThumbnailCache, default_cache_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_COOKIE = "catalog_token"
PRESIGN_EXPIRES_S = 900
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServeOptions:
    """How the gallery is served."""

    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None  # required on every request when set
    cache_dir: Path | None = None
    profile: str | None = None
    region: str | None = None
    thumbnail_workers: int = 4

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the server."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random access token, like Jupyter's."""
    return secrets.token_urlsafe(24)


@dataclass
class Gallery:
    """What every request handler shares: sessions, AWS access, thumbnails, templates."""

    options: ServeOptions
    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    thumbnails: ThumbnailCache
    _clients: Any = field(default=None, repr=False)

    def clients(self) -> Any:
        """The run's AWS clients, built on first need (local-only catalogues never need them)."""
        if self._clients is None:
            from catalog.aws.clients import AWSClients

            self._clients = AWSClients(self.options.profile, self.options.region)
        return self._clients

    def s3(self) -> Any:
        """The shared S3 client."""
        return self.clients().s3

    def presign(self, bucket: str, key: str) -> str:
        """A short-lived GET URL for one S3 object (signed here: credentials stay server-side)."""
        from catalog.aws.clients import s3_presigner

        return s3_presigner(self.clients(), PRESIGN_EXPIRES_S)(bucket, key)

    @cached_property
    def content_security_policy(self) -> str:
        """Scripts, styles and fonts only from this server; S3 media from https or the endpoint."""
        remote = "https:"
        if self._clients is not None or _has_s3_endpoint_override():
            endpoint = urlsplit(str(self.s3().meta.endpoint_url))
            if endpoint.scheme == "http":
                remote += f" http://{endpoint.netloc} http://*.{endpoint.netloc}"
        return (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: {remote}; media-src 'self' {remote}; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )


def _has_s3_endpoint_override() -> bool:
    import os

    return bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


class GuardMiddleware:
    """Refuses requests without the token (when one is set) or for another Host (when local).

    The token arrives once as `?token=` (the printed URL) and is then kept in an HttpOnly,
    SameSite=Strict cookie. A loopback-only server still checks the Host header, so a web page
    elsewhere cannot reach it through DNS rebinding.
    """

    def __init__(self, app: ASGIApp, gallery: Gallery) -> None:
        self.app = app
        self.gallery = gallery

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        options = self.gallery.options
        refusal: str | None = None
        set_cookie = False
        if options.is_loopback and not _is_local_host_header(request.headers.get("host", "")):
            refusal = "Forbidden: this server answers only to localhost and 127.0.0.1."
        elif options.token:
            given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
            if not hmac.compare_digest(given.encode(), options.token.encode()):
                refusal = "Forbidden: open the URL with ?token=... that 'catalog serve' printed."
            set_cookie = "token" in request.query_params
        if refusal is not None:
            response: Response = PlainTextResponse(refusal, status_code=403)
            await _with_headers(response, self.gallery)(scope, receive, send)
            return

        started = time.perf_counter()

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += _security_headers(self.gallery)
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={elapsed_ms:.2f}".encode()))
                if set_cookie and options.token:
                    cookie = f"{TOKEN_COOKIE}={options.token}; Path=/; HttpOnly; SameSite=Strict"
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_local_host_header(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    return name.lower() in LOOPBACK_NAMES


def _security_headers(gallery: Gallery) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", gallery.content_security_policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


def _with_headers(response: Response, gallery: Gallery) -> Response:
    for name, value in _security_headers(gallery):
        response.headers[name.decode()] = value.decode()
    return response


def create_app(options: ServeOptions, sessions: sessionmaker[Session] | None = None) -> Starlette:
    """The gallery application over the catalogue `options.database_url` names."""
    from catalog.store.engine import open_catalogue
    from catalog.web import api, files, pages

    if sessions is None:
        sessions = open_catalogue(options.database_url)[1]
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PACKAGE_DIR / "templates")), autoescape=True
    )
    templates = Jinja2Templates(env=environment)
    gallery_ref: dict[str, Gallery] = {}
    thumbnails = ThumbnailCache(
        options.cache_dir or default_cache_dir(options.database_url),
        lambda: gallery_ref["gallery"].s3(),
        workers=options.thumbnail_workers,
    )
    gallery = Gallery(options, sessions, templates, thumbnails)
    gallery_ref["gallery"] = gallery
    pages.install_filters(templates)
    routes: list[BaseRoute] = [
        *pages.routes(gallery),
        *api.routes(gallery),
        *files.routes(gallery),
        Mount("/static", app=StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers=api.exception_handlers(gallery))
    app.add_middleware(GuardMiddleware, gallery=gallery)
    app.state.gallery = gallery
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port); UsageError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def server_url(options: ServeOptions, port: int) -> str:
    """The address to open, with the token when one is needed."""
    host = options.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/"
    return f"{url}?token={options.token}" if options.token else url


def serve(options: ServeOptions, *, on_ready: Callable[[str], None] = lambda _url: None) -> None:
    """Serve the gallery until the process is interrupted; `on_ready` gets the URL first."""
    import uvicorn

    app = create_app(options)
    sock = bind_socket(options.host, options.port)
    url = server_url(options, sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    on_ready(url)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.gallery.thumbnails.close()
        sock.close()
