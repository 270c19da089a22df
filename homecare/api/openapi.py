"""The OpenAPI document says what the API really answers: the `{"detail": "..."}` errors with
their status codes on every operation, besides the success responses FastAPI derives."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {"detail": {"type": "string", "title": "Detail", "description": "what was wrong"}},
}
_WRITES = {"post", "put", "patch", "delete"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the error responses each operation can give to an OpenAPI document (in place)."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    validation = spec["components"]["schemas"].get("HTTPValidationError")
    invalid_schema = {"anyOf": [{"$ref": "#/components/schemas/HTTPValidationError"}, ERROR]} if validation else ERROR
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            responses = op.setdefault("responses", {})

            def add(code: int, description: str, responses=responses) -> None:
                responses.setdefault(str(code), _error(description))

            # Every request passes the input guard: unstorable path, query or body values.
            responses["422"] = {"description": "Invalid input: the fields at fault, or what was wrong",
                                "content": {"application/json": {"schema": invalid_schema}}}
            if "requestBody" in op:
                add(413, "Request body too large")
            if not path.startswith("/api/"):
                continue
            add(400, "The request cannot be carried out as asked")
            if op.get("security"):
                add(401, "Not signed in, or the token is unknown or expired")
                add(403, "The role or account may not do this")
            if "{" in path or "requestBody" in op:
                add(404, "Unknown id (in the path or the body)")
            if method in _WRITES:
                add(409, "The thing is in a state that forbids this (an expired offer, a taken username)")
    return spec


def install(app: FastAPI) -> None:
    """Make `app.openapi()` return the document with its error responses."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(plain())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
