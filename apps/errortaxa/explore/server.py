"""The explorer's HTTP server (standard library): the page, its JSON API, thumbnails and images.

Safety: every answer carries a Content-Security-Policy without remote origins; a POST whose
Origin is not this server's is refused (403); without a token only requests naming a loopback
Host are answered (no DNS rebinding); with a token (``--token`` / ``$ERRORTAXA_TOKEN``, needed
for any host but 127.0.0.1) every request but the page itself and ``POST /api/login`` needs the
``errortaxa_token`` cookie (HttpOnly, SameSite=Strict) or ``Authorization: Bearer TOKEN``.
Bodies are bounded (the taxonomy limit of ``errortaxa.engine.language.limits``); a bad request
is a 4xx JSON error ``{"error": {"message", "field"}}``, never a 500.
"""

from __future__ import annotations

import hmac
import mimetypes
import re
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from errortaxa.engine.language import limits
from errortaxa.explore.app import BadRequest, Explorer
from errortaxa.explore.images import ImageFolder

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
COOKIE = "errortaxa_token"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
MAX_JSON_BODY = 64 * 1024  # notes, login
OPEN = {("GET", "/"), ("GET", "/index.html"), ("POST", "/api/login"), ("GET", "/favicon.ico")}


class ExploreServer(ThreadingHTTPServer):
    """A threading HTTP server holding the explorer, its images and its token."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, images: ImageFolder, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None, static: Path = STATIC, log: bool = False) -> None:
        super().__init__((host, port), Handler)
        self.explorer = explorer
        self.images = images
        self.token = token or None
        self.static = static.resolve()
        self.log = log

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="errortaxa-explore", daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    protocol_version = "HTTP/1.1"
    server_version = "errortaxa-explore"
    sys_version = ""

    # ------------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._send_json(405, {"error": {"message": "method not allowed", "field": None}})

    do_DELETE = do_PATCH = do_PUT

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            super().log_message(format, *args)

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            self._check_host()
            if method == "POST":
                self._check_origin()
            route = (method if method != "HEAD" else "GET", path)
            if route not in OPEN and not path.startswith("/static/") and not self._authorised():
                raise BadRequest("a token is needed: POST /api/login {\"token\": ...}", "token", 401)
            self._route(method, path, params)
        except BadRequest as error:
            if method == "POST":  # its body may be unread: no further request on this connection
                self.close_connection = True
            self._send_json(error.http_status, error.to_dict())
        except Exception:  # a bug, not bad input: logged, answered 500 without details
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"error": {"message": "internal error", "field": None}})

    def _route(self, method: str, path: str, params: dict[str, str]) -> None:
        ex = self.server.explorer
        if method in ("GET", "HEAD"):
            if path in ("/", "/index.html"):
                return self._static("index.html")
            if path.startswith("/static/"):
                return self._static(unquote(path[len("/static/"):]))
            if path.startswith("/thumb/"):
                return self._image(unquote(path[len("/thumb/"):]), thumb=True)
            if path.startswith("/image/"):
                return self._image(unquote(path[len("/image/"):]), thumb=False)
            getters = {
                "/api/state": lambda: ex.state(), "/api/models": lambda: ex.models(params.get("tx")),
                "/api/plots": lambda: ex.plots(params.get("tx")), "/api/errors": lambda: ex.errors(params),
                "/api/error_models": lambda: ex.error_models(params), "/api/explain": lambda: ex.explain(params),
                "/api/compare": lambda: ex.compare(params), "/api/notes": lambda: ex.read_notes(),
            }
            if path in getters:
                return self._send_json(200, getters[path]())
            if path == "/api/taxonomy":
                view = ex.view(params.get("tx"))
                name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{view.taxonomy.name}-{view.tx}.yaml")
                return self._send(200, view.yaml.encode(), "text/yaml; charset=utf-8",
                                  {"Content-Disposition": f'attachment; filename="{name}"'})
            if path == "/api/export":
                kind, body = ex.export(params)
                suffix = "csv" if kind.startswith("text/csv") else "jsonl"
                return self._send(200, body, kind, {"Content-Disposition": f'attachment; filename="errors.{suffix}"'})
        elif method == "POST":
            if path == "/api/validate":
                return self._send_json(200, ex.validate(self._text_body()))
            if path == "/api/taxonomy":
                return self._send_json(200, ex.apply(self._text_body(), params.get("model") or None,
                                                     params.get("from_tx") or None))
            if path == "/api/save":
                self._drain()
                return self._send_json(200, ex.save(params.get("tx")))
            if path == "/api/notes":
                return self._send_json(200, ex.add_note(self._json_body()))
            if path == "/api/login":
                return self._login(self._json_body())
        raise BadRequest("not found", None, 404)

    # ------------------------------------------------------------------ safety

    def _check_host(self) -> None:
        """Without a token only loopback Host names are answered (a DNS-rebound name is refused)."""
        if self.server.token is not None:
            return
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        bound = str(self.server.server_address[0]).lower()
        if name not in (*LOOPBACK, bound):
            raise BadRequest("unknown Host", "Host", 403)

    def _check_origin(self) -> None:
        """A POST from another origin (a page elsewhere posting here) is refused."""
        origin = self.headers.get("Origin")
        host = self.headers.get("Host") or ""
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            raise BadRequest("cross-origin request refused", "Origin", 403)
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise BadRequest("cross-origin request refused", "Sec-Fetch-Site", 403)

    def _token_given(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):].strip()
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == COOKIE:
                return value
        return None

    def _authorised(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self._token_given()
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def _login(self, body: Any) -> None:
        token = self.server.token
        given = body.get("token") if isinstance(body, dict) else None
        if token is None:
            return self._send_json(200, {"ok": True, "token_required": False})
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            raise BadRequest("wrong token", "token", 401)
        cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        self._send_json(200, {"ok": True, "token_required": True}, {"Set-Cookie": cookie})

    # ------------------------------------------------------------------ bodies

    def _body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("a body with Content-Length is needed", "Content-Length", 411)
        size = int(length)
        if size > limit:
            self.close_connection = True
            if size <= 8 * limit:  # read (and drop) a moderately large body, so the client sees the answer
                while size > 0:
                    size -= len(self.rfile.read(min(size, 1 << 16)) or b"\0" * size)
            raise BadRequest(f"the body is over the limit of {limit} bytes", "body", 413)
        return self.rfile.read(size)

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) <= MAX_JSON_BODY:
            self.rfile.read(int(length))

    def _text_body(self) -> str:
        data = self._body(limits.current().max_bytes)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8 text", "body") from None

    def _json_body(self) -> Any:
        try:
            return orjson.loads(self._body(MAX_JSON_BODY))
        except orjson.JSONDecodeError:
            raise BadRequest("the body is not JSON", "body") from None

    # ------------------------------------------------------------------ answers

    def _static(self, name: str) -> None:
        root = self.server.static
        target = (root / name).resolve()
        if not name or not target.is_relative_to(root) or not target.is_file():
            raise BadRequest("not found", None, 404)
        kind = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
                ".svg": "image/svg+xml", ".json": "application/json"}.get(target.suffix.lower()) \
            or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith(("json", "xml")):
            kind += "; charset=utf-8"
        self._send(200, target.read_bytes(), kind, {"Cache-Control": "no-cache"})

    def _image(self, name: str, thumb: bool) -> None:
        images = self.server.images
        try:
            data = images.thumbnail(name) if thumb else images.full(name)
        except (KeyError, OSError):
            raise BadRequest("not found", "image", 404) from None
        self._send(200, data, "image/jpeg", {"Cache-Control": "private, max-age=3600"})

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        self._send(status, data, "application/json", {"Cache-Control": "no-store", **(headers or {})})

    def _send(self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
