"""Account security: CSRF, API tokens, login throttling, cookies, isolation."""

from __future__ import annotations

import itertools
import re
import sqlite3

import pytest

from .conftest import Shopper, csrf_token

_emails = (f"secure{n}@example.com" for n in itertools.count())
ITEM = "71053"
OTHER_ITEM = "22086"


@pytest.fixture()
def shopper(client):
    person = Shopper(client, next(_emails))
    assert person.register().status_code == 302
    return person


def new_token(client, name: str = "tests") -> str:
    page = client.post(
        "/account/tokens",
        data={"csrf_token": csrf_token(client, "/account"), "name": name},
    )
    assert page.status_code == 200
    return re.search(rb'id="new-token" readonly value="([^"]+)"', page.data)[1].decode()


def feedback(client, body: dict, **headers):
    return client.post("/api/users/me/feedback", json=body, headers=headers)


# CSRF on the JSON API


def test_session_feedback_needs_the_csrf_header(client, shopper):
    refused = feedback(client, {"item_id": ITEM, "kind": "like"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    assert (
        feedback(
            client, {"item_id": ITEM, "kind": "like"}, **{"X-CSRFToken": "forged"}
        ).status_code
        == 403
    )

    token = csrf_token(client, f"/product/{ITEM}")
    accepted = feedback(
        client, {"item_id": ITEM, "kind": "like"}, **{"X-CSRFToken": token}
    )
    assert accepted.status_code == 200
    assert accepted.get_json()["liked"] is True


def test_a_bearer_token_needs_no_csrf_header(client, shopper):
    token = new_token(client)
    shopper.logout()
    response = feedback(
        client, {"item_id": ITEM, "kind": "like"}, Authorization=f"Bearer {token}"
    )
    assert response.status_code == 200


def test_feedback_without_any_credentials_is_401(client):
    response = feedback(client, {"item_id": ITEM, "kind": "like"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", "Token x"]
)
def test_bad_authorization_headers_are_401(client, header):
    response = client.get(
        "/api/users/me/recommendations", headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] in ("unauthorized", "invalid_token")


# API tokens


def test_tokens_are_stored_as_digests(app, client, shopper):
    token = new_token(client)
    with sqlite3.connect(app.extensions["shop"].settings.shop_db_path) as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM api_tokens")]
    assert token not in stored
    assert all(len(digest) == 64 for digest in stored)


def test_a_token_speaks_for_its_owner_only(client, shopper):
    token = new_token(client)
    shopper.logout()
    other = Shopper(client, next(_emails))
    other.register("Other")
    # Other's session cookie and shopper's token: the token decides.
    response = feedback(
        client, {"item_id": OTHER_ITEM, "kind": "like"}, Authorization=f"Bearer {token}"
    )
    assert response.status_code == 200
    db = client.application.extensions["shop"].db
    owner = db.user_by_email(shopper.email)
    assert db.likes(owner.id) == [OTHER_ITEM]
    assert db.likes(db.user_by_email(other.email).id) == []


def test_nobody_can_revoke_another_shoppers_token(client, shopper):
    token = new_token(client)
    db = client.application.extensions["shop"].db
    owner = db.user_by_email(shopper.email)
    (mine,) = db.tokens(owner.id)
    shopper.logout()

    other = Shopper(client, next(_emails))
    other.register("Other")
    response = client.post(
        f"/account/tokens/{mine.id}/revoke",
        data={"csrf_token": csrf_token(client, "/account")},
    )
    assert response.status_code == 404
    assert b"Traceback" not in response.data
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/users/me/recommendations", headers=headers).status_code == (
        200
    )

    other.logout()
    shopper.login()
    response = client.post(
        f"/account/tokens/{mine.id}/revoke",
        data={"csrf_token": csrf_token(client, "/account")},
    )
    assert response.status_code == 303
    revoked = client.get("/api/users/me/recommendations", headers=headers)
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]["code"] == "invalid_token"


def test_account_pages_need_login(client):
    assert client.get("/account").status_code == 302
    assert client.post("/account/undo").status_code in (302, 400)


def test_undo_never_crosses_to_another_shopper(client, shopper):
    shopper.like(ITEM)
    client.post(
        f"/account/likes/{ITEM}/remove",
        data={"csrf_token": csrf_token(client, "/account")},
    )
    shopper.logout()
    other = Shopper(client, next(_emails))
    other.register("Other")
    page = client.get("/account")
    assert b"was removed" not in page.data
    client.post("/account/undo", data={"csrf_token": csrf_token(client, "/account")})
    db = client.application.extensions["shop"].db
    assert db.likes(db.user_by_email(other.email).id) == []
    assert db.likes(db.user_by_email(shopper.email).id) == []


# Login throttling


def attempt(client, email: str, password: str, address: str):
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_five_failures_lock_an_account_for_a_while(client, shopper):
    shopper.logout()
    for _ in range(5):
        assert attempt(client, shopper.email, "wrong", "10.0.0.1").status_code == 401
    locked = attempt(client, shopper.email, shopper.password, "10.0.0.2")
    assert locked.status_code == 429
    assert b"Too many failed attempts" in locked.data
    assert 0 < int(locked.headers["Retry-After"]) <= 300
    # Other accounts are not locked by it.
    other = Shopper(client, next(_emails))
    other.register()
    other.logout()
    assert attempt(client, other.email, other.password, "10.0.0.1").status_code == 302


def test_many_failures_from_one_address_are_throttled(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_ADDRESS", 3)
    for n in range(3):
        response = attempt(client, f"nobody{n}@example.com", "wrong", "10.9.9.9")
        assert response.status_code == 401
    response = attempt(client, "nobody9@example.com", "wrong", "10.9.9.9")
    assert response.status_code == 429
    assert attempt(client, "nobody9@example.com", "x", "10.9.9.8").status_code == 401


def test_a_success_clears_the_accounts_failures(client, shopper):
    shopper.logout()
    for _ in range(4):
        attempt(client, shopper.email, "wrong", "10.0.1.1")
    assert attempt(client, shopper.email, shopper.password, "10.0.1.1").status_code == (
        302
    )
    shopper.logout()
    for _ in range(4):
        assert attempt(client, shopper.email, "wrong", "10.0.1.2").status_code == 401


# Cookies and errors


def test_session_cookie_is_httponly_and_samesite(client):
    response = Shopper(client, next(_emails)).register()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in development


def test_production_cookies_are_secure(shop_settings, embedder):
    from web import create_app

    production = shop_settings.with_overrides(
        environment="production", secret_key="a-long-random-test-secret-0123456789"
    )
    app = create_app(production, embedder=embedder, test_config={"TESTING": True})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = Shopper(app.test_client(), next(_emails)).register()
    assert "Secure" in response.headers["Set-Cookie"]


def test_an_unexpected_error_shows_no_stack_trace(shop_settings, embedder):
    from web import create_app

    app = create_app(shop_settings, embedder=embedder, test_config={"TESTING": True})

    @app.get("/boom")
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert b"secret internals" not in page.data
    assert b"Something went wrong" in page.data
    api = client.get("/api/boom")
    assert api.status_code == 500
    assert api.get_json()["error"]["code"] == "internal_error"
    assert "secret" not in api.get_json()["error"]["message"]
