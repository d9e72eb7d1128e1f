"""The shop front and the JSON API, through Flask's test client."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from .conftest import Shopper

_emails = (f"shopper{n}@example.com" for n in itertools.count())


@pytest.fixture()
def shopper(client):
    person = Shopper(client, next(_emails))
    assert person.register().status_code == 302
    return person


def test_home_shows_trending_products(client):
    page = client.get("/")
    assert page.status_code == 200
    assert b"Trending now" in page.data
    assert page.data.count(b'class="card"') == 12


def test_search_page_for_lantern(client):
    page = client.get("/search?q=lantern")
    assert page.status_code == 200
    assert b"Lantern" in page.data
    assert b"results for" in page.data
    assert page.data.count(b'class="card"') == 20


def test_search_page_rejects_bad_bounds(client):
    page = client.get("/search?q=lantern&page=0")
    assert page.status_code == 400
    assert b"page" in page.data


def test_product_page_has_similar_products(client):
    page = client.get("/product/71053")
    assert page.status_code == 200
    assert b"White Metal Lantern" in page.data
    assert b"Similar products" in page.data
    assert client.get("/product/NO-SUCH").status_code == 404


def test_api_search(client):
    body = client.get("/api/search?q=lantern&per_page=5").get_json()
    assert body["total"] >= 5 and len(body["results"]) == 5
    assert "lantern" in body["results"][0]["title"].lower()
    assert {f["key"] for f in body["facets"]["price"]} >= {"under 1", "2 to 5"}


def test_api_similar(client):
    body = client.get("/similar/71053?k=5").get_json()
    assert len(body["results"]) == 5
    assert "71053" not in [r["item_id"] for r in body["results"]]
    assert client.get("/api/products/71053/similar?k=3").get_json()["k"] == 3


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/similar/NO-SUCH", 404, "not_found"),
        ("/similar/71053?k=0", 400, "bad_parameter"),
        ("/similar/71053?k=abc", 400, "bad_parameter"),
        ("/similar/71053?top=3", 400, "bad_parameter"),
        ("/api/search", 400, "bad_parameter"),
        ("/api/search?q=x&per_page=1000", 400, "bad_parameter"),
        ("/api/search?q=x&mode=magic", 400, "bad_parameter"),
        ("/api/products/NO-SUCH", 404, "not_found"),
        ("/api/users/me/recommendations", 401, "unauthorized"),
        ("/api/nothing-here", 404, "not_found"),
    ],
)
def test_api_errors_are_json(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_unknown_parameter_is_named(client):
    error = client.get("/api/search?q=x&colour=red").get_json()["error"]
    assert "colour" in error["message"]
    assert error["parameter"] == "colour"


def test_register_login_logout(client):
    person = Shopper(client, next(_emails))
    assert person.register("Ann").status_code == 302
    assert b"Hi, Ann" in client.get("/").data
    assert person.logout().status_code == 302
    assert b"Log in" in client.get("/").data
    assert person.login(password="wrong password").status_code == 401
    assert person.login().status_code == 302
    assert b"Hi, Ann" in client.get("/").data


def test_duplicate_registration_is_refused(client, shopper):
    shopper.logout()
    again = Shopper(client, shopper.email).register()
    assert again.status_code == 400
    assert b"already exists" in again.data


def test_passwords_are_hashed(app, shopper):
    user = app.extensions["shop"].db.user_by_email(shopper.email)
    assert shopper.password not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_login_next_stays_on_this_site(client, shopper):
    shopper.logout()
    response = shopper.login(next_url="https://evil.example/")
    assert response.headers["Location"] == "/"
    shopper.logout()
    response = shopper.login(next_url="/product/71053")
    assert response.headers["Location"] == "/product/71053"


def test_forms_need_a_csrf_token(client, shopper):
    response = client.post("/product/71053/rate", data={"stars": "5"})
    assert response.status_code == 400


def test_rating_needs_login(client):
    response = client.post("/product/71053/rate", data={"stars": "5"})
    assert response.status_code in (302, 400)


def test_a_new_rating_changes_for_you(client, shopper):
    before = shopper.for_you()
    assert shopper.rate("71053", 5).status_code == 303
    after = shopper.for_you()
    assert after != before
    assert "71053" not in after
    page = client.get("/product/71053")
    assert b"Your rating: 5 stars" in page.data
    home = client.get("/")
    assert b"Picked for you" in home.data


def test_likes_change_for_you_and_can_be_undone(app, client, shopper):
    cold = shopper.for_you()
    shopper.like("22086")  # Paper Chain Kit 50's Christmas
    assert shopper.for_you() != cold
    db = app.extensions["shop"].db
    user = db.user_by_email(shopper.email)
    assert db.likes(user.id) == ["22086"]

    shopper.like("22086", liked=False)
    assert db.likes(user.id) == []
    # Only the views of the product page remain, a light signal.
    from recs.collaborative import VIEW_STRENGTH

    assert 0 < db.history(user.id)["22086"] <= 3 * VIEW_STRENGTH


def test_feedback_is_on_disk_at_once(app, shopper):
    shopper.rate("85123A", 4)
    user = app.extensions["shop"].db.user_by_email(shopper.email)
    with sqlite3.connect(app.extensions["shop"].settings.shop_db_path) as db:
        stars = db.execute(
            "SELECT stars FROM ratings WHERE user_id = ? AND item_id = ?",
            (user.id, "85123A"),
        ).fetchone()
    assert stars == (4,)


def test_default_secret_key_refused_outside_development(shop_settings):
    from web import create_app

    production = shop_settings.with_overrides(environment="production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(production, test_config={"TESTING": True})
