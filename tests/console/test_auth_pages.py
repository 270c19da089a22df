"""Sign-in, sign-out, guards and CSRF on the real database."""

from __future__ import annotations

from homecare.api.deps import SESSION_COOKIE

from .conftest import PASSWORD, csrf_in, sign_in


def _set_cookie_header(response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert headers, f"no {name} cookie set"
    return headers[0]


def test_login_sets_an_httponly_lax_session_cookie_and_redirects(client, dispatcher):
    response = sign_in(client, dispatcher, next="/?view=all")

    assert response.status_code == 303
    assert response.headers["location"] == "/?view=all"
    cookie = _set_cookie_header(response, SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert client.cookies.get(SESSION_COOKIE)


def test_the_session_cookie_works_for_the_api(client, dispatcher):
    sign_in(client, dispatcher)

    me = client.get("/api/v1/me")

    assert me.status_code == 200
    assert me.json()["username"] == dispatcher


def test_wrong_password_shows_an_error_and_sets_no_session(client, dispatcher):
    response = sign_in(client, dispatcher, password="not the password")

    assert response.status_code == 401
    assert "Incorrect username or password" in response.text
    assert f'value="{dispatcher}"' in response.text  # the username is kept in the form
    assert not client.cookies.get(SESSION_COOKIE)


def test_unknown_user_gets_the_same_error(client):
    response = sign_in(client, "nobody-here")

    assert response.status_code == 401
    assert "Incorrect username or password" in response.text


def test_pages_redirect_to_login_when_not_signed_in(client):
    response = client.get("/", params={"x": "1"})

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fx%3D1"


def test_an_expired_or_forged_cookie_is_treated_as_signed_out(client):
    client.cookies.set(SESSION_COOKIE, "not-a-real-token")

    assert client.get("/").status_code == 303


def test_login_page_sends_a_signed_in_user_on(signed_in):
    response = signed_in.get("/login", params={"next": "/"})

    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_next_never_leaves_the_site(client, dispatcher):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        client.cookies.clear()
        response = sign_in(client, dispatcher, next=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/", target


def test_a_provider_gets_403_on_the_board(client, provider_user):
    assert sign_in(client, provider_user).status_code == 303

    page = client.get("/")
    stream = client.get("/events/requests")

    assert page.status_code == 403
    assert "dispatcher" in page.text and provider_user in page.text
    assert stream.status_code == 403


def test_login_without_the_form_token_is_refused(client, dispatcher):
    client.get("/login")  # has the cookie, but the post below does not carry the token

    response = client.post("/login", data={"username": dispatcher, "password": PASSWORD})

    assert response.status_code == 403
    assert not client.cookies.get(SESSION_COOKIE)


def test_login_with_a_token_from_another_browser_is_refused(client, dispatcher):
    token = csrf_in(client.get("/login").text)
    client.cookies.clear()  # another browser: no cookie to match the token

    response = client.post("/login", data={
        "username": dispatcher, "password": PASSWORD, "csrf_token": token,
    })

    assert response.status_code == 403
    assert not client.cookies.get(SESSION_COOKIE)


def test_logout_without_the_csrf_token_is_refused_and_keeps_the_session(signed_in):
    response = signed_in.post("/logout")

    assert response.status_code == 403
    assert signed_in.get("/api/v1/me").status_code == 200


def test_logout_with_a_wrong_csrf_token_is_refused(signed_in):
    response = signed_in.post("/logout", data={"csrf_token": "0" * 64})

    assert response.status_code == 403
    assert signed_in.get("/api/v1/me").status_code == 200


def test_logout_revokes_the_token_everywhere(signed_in):
    token = signed_in.cookies.get(SESSION_COOKIE)
    page = signed_in.get("/")
    assert page.status_code == 200

    response = signed_in.post("/logout", data={"csrf_token": csrf_in(page.text)})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert not signed_in.cookies.get(SESSION_COOKIE)
    # The old token no longer opens the API, even presented as a bearer token.
    assert signed_in.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    signed_in.cookies.set(SESSION_COOKIE, token)
    assert signed_in.get("/").status_code == 303


def test_the_csrf_header_is_accepted_for_scripted_posts(signed_in):
    token = csrf_in(signed_in.get("/").text)

    response = signed_in.post("/logout", headers={"X-CSRF-Token": token})

    assert response.status_code == 303


def test_pages_carry_security_headers(client):
    response = client.get("/login")

    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_static_assets_are_served_locally(client):
    page = client.get("/login").text
    css = client.get("/static/console.css")
    js = client.get("/static/board.js")

    assert '/static/console.css?v=' in page
    assert css.status_code == 200 and ".pill-escalated" in css.text
    assert js.status_code == 200 and "EventSource" in js.text
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
