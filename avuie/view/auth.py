"""The viewer's token rule is `avuie serve`'s (avuie.shards.guard.BearerTokenGate: every request, /healthz and
static files included, needs `Authorization: Bearer <token>`, else 401), with one addition a browser needs: a
browser cannot send that header when it follows a link, so the token may also arrive as `?token=...` (the URL the
command prints) or, after that first page, as an HttpOnly, SameSite=Strict cookie. Both are turned into the same
header and checked by the same gate. Requests that change data (POST) must also come from the viewer's own
pages (Origin or Referer naming the Host), so that another site cannot post to a viewer on localhost.

A viewer bound to a loopback address also refuses (421) any request whose Host header names another host
(`LoopbackHostGate`): a web page whose domain an attacker re-points to 127.0.0.1 (DNS rebinding) would otherwise
be same-origin with the viewer in the user's browser, read its pages and post edits.
"""

from __future__ import annotations

import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from avuie.shards.guard import BearerTokenGate

COOKIE = "avuie_view_token"


def _token_from(scope) -> tuple[str | None, bool]:
    """(token offered by query string or cookie, whether it came from the query string)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0], True
    raw = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
    morsel = SimpleCookie(raw).get(COOKIE) if raw else None
    return (morsel.value if morsel else None), False


class BrowserTokenGate:
    """ASGI middleware: BearerTokenGate(app, token), also accepting the token as `?token=` or the viewer's cookie;
    a token accepted from the query string is set as the cookie on that response."""

    def __init__(self, app, token: str):
        self.gate, self.token = BearerTokenGate(app, token), token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or b"authorization" in dict(scope["headers"]):
            await self.gate(scope, receive, send)
            return
        offered, from_query = _token_from(scope)
        if offered is None:
            await self.gate(scope, receive, send)
            return
        headers = [*scope["headers"], (b"authorization", f"Bearer {offered}".encode("latin-1", "replace"))]
        scope = {**scope, "headers": headers}

        async def send_with_cookie(message):
            if from_query and message["type"] == "http.response.start" and message["status"] != 401:
                cookie = f"{COOKIE}={offered}; HttpOnly; SameSite=Strict; Path=/"
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        await self.gate(scope, receive, send_with_cookie)


def same_origin(headers) -> bool:
    """True when a request's Origin (or, without one, its Referer) names the Host it was sent to."""
    host = headers.get("host", "")
    origin = headers.get("origin") or headers.get("referer")
    return bool(host) and bool(origin) and urlsplit(origin).netloc == host


def is_loopback(host: str) -> bool:
    """True for localhost and every loopback address (127.0.0.0/8, ::1, with or without IPv6 brackets)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower().rstrip(".") == "localhost"


def host_name(scope) -> str:
    """The host name of a request's Host header, without port or brackets ("" when absent or malformed)."""
    raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    try:
        return urlsplit(f"//{raw}").hostname or ""
    except ValueError:
        return ""


class LoopbackHostGate:
    """ASGI middleware for a viewer listening on loopback: 421 unless the Host header names a loopback host."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not is_loopback(host_name(scope)):
            from starlette.responses import Response

            refusal = Response(
                "refused: this viewer listens on loopback and answers only to localhost / 127.0.0.1 / [::1] "
                "in the Host header (open it by the URL it printed)",
                status_code=421,
                media_type="text/plain",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)
