"""`OPTIONS` and 405 answers name every method of a path. Starlette answers from the first route
whose path matches, so `OPTIONS /api/v1/residents` said `Allow: POST` though GET exists too; this
collects the methods of every route of the path (issue 12, item 9)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _serves(route, scope: Scope, method: str) -> bool:
    return route.matches({**scope, "method": method})[0] is Match.FULL


def allowed_methods(app, scope: Scope) -> list[str]:
    """Every method the app's routes take on the scope's path (HEAD with GET, and OPTIONS); empty
    when no route has this path. Asks each route whether it takes the path with a method (the
    routes' own `matches`, also through FastAPI's included routers); a route that takes any
    method at all (a mount, e.g. static files) is left to answer for itself."""
    methods: set[str] = set()
    for route in getattr(getattr(app, "router", None), "routes", []):
        if _serves(route, scope, "NO-SUCH-METHOD"):
            continue
        methods |= {m for m in _METHODS if _serves(route, scope, m)}
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return sorted(methods)


class AllowHeader:
    """Pure ASGI middleware: `OPTIONS` on a known path is 204 with `Allow`; any 405 gets the full
    `Allow` of its path."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = allowed_methods(scope.get("app"), scope)
            if methods:
                await send({"type": "http.response.start", "status": 204,
                            "headers": [(b"allow", ", ".join(methods).encode()), (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        # Only a 405 pays for the look-up.
        probe = {k: v for k, v in scope.items() if k in ("type", "path", "root_path", "method", "app")}

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = allowed_methods(probe.get("app"), probe)
                if methods:
                    MutableHeaders(scope=message)["allow"] = ", ".join(methods)
            await send(message)

        await self.app(scope, receive, send_with_allow)
