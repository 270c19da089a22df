"""An authenticated request holds one pooled connection, not two: the route and the signed-in user
share the request's connection (two at once deadlocked a busy pool into 500s)."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from homecare.api.app import build_app
from homecare.api.deps import CurrentUser, DbConn
from homecare.auth import Role, create_user, issue_token
from tests.support import unique


@pytest.fixture
def one_connection_pool(database_url):
    """A pool of exactly one connection that gives up quickly, so a second checkout fails fast."""
    pool = ConnectionPool(database_url, min_size=1, max_size=1, timeout=2, open=False,
                          kwargs={"row_factory": dict_row, "autocommit": False})
    pool.open(wait=True, timeout=30)
    yield pool
    pool.close()


def test_a_signed_in_request_that_uses_the_database_needs_only_one_connection(one_connection_pool):
    router = APIRouter()

    @router.get("/whoami-and-now")
    def whoami(conn: DbConn, user: CurrentUser) -> dict:  # the connection first, as most routes have it
        backend = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
        return {"user": user.username, "backend": backend}

    name = unique("dispatcher")
    with one_connection_pool.connection() as conn:
        user = create_user(conn, name, "a long enough password", Role.DISPATCHER)
        token = issue_token(conn, user)
    app = build_app("test", one_connection_pool, routers=[router], with_auth=False)
    with TestClient(app) as client:
        for _ in range(3):
            response = client.get("/whoami-and-now", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            assert response.json()["user"] == name
        assert client.get("/whoami-and-now", headers={"Authorization": "Bearer nope"}).status_code == 401
