"""The shop front and the JSON API, through Flask's test client."""

from __future__ import annotations

import html
import itertools
import re
import sqlite3

import pytest

from .conftest import Shopper, csrf_token

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
    with pytest.raises(RuntimeError, match="SECRET_KEY is the default"):
        create_app(production, test_config={"TESTING": True})
    short = production.with_overrides(secret_key="x" * 31)
    with pytest.raises(RuntimeError, match="fewer than 32"):
        create_app(short, test_config={"TESTING": True})


def test_logging_out_ends_the_session_a_copied_cookie_holds(app, shopper):
    copy = app.test_client()
    cookie = shopper.client.get_cookie("session")
    copy.set_cookie("session", cookie.value)
    assert copy.get("/account").status_code == 200
    shopper.logout()
    assert copy.get("/account").status_code == 302  # to the login page
    assert shopper.login().status_code == 302
    assert shopper.client.get("/account").status_code == 200


# The shop front's pages


def test_cards_show_price_rating_and_a_like_button(client):
    page = client.get("/search?q=lantern").data.decode()
    card = page[page.index('<article class="card">') :]
    card = card[: card.index("</article>")]
    assert "£" in card
    assert "Not rated yet" in card or "out of 5" in card
    assert 'aria-label="Log in to like' in card
    assert 'class="placeholder"' in card


def test_search_has_facets_sorting_and_pages(client):
    page = client.get("/search?q=lantern").data.decode()
    assert "Sort by" in page
    for label in ("Best match", "Price: low to high", "Price: high to low"):
        assert label in page
    assert "Under £1" in page
    assert 'rel="next"' in page
    second = client.get("/search?q=lantern&page=2")
    assert b"Page 2 of" in second.data


def card_prices(page: str) -> list[float]:
    found = re.findall(r'price">£([\d.,]+)', page)
    return [float(price.replace(",", "")) for price in found]


def test_a_price_facet_narrows_and_can_be_removed(client):
    page = client.get("/search?q=lantern&price_min=2&price_max=4.99").data.decode()
    assert 'class="chip"' in page
    prices = card_prices(page)
    assert prices and all(2 <= p <= 4.99 for p in prices)


def test_sorting_by_price(client):
    page = client.get("/search?q=lantern&sort=price_desc").data.decode()
    prices = card_prices(page)
    assert prices == sorted(prices, reverse=True)


def test_an_empty_result_offers_alternatives(client):
    page = client.get("/search?q=lantern+zzzqqq&mode=keyword&rating_min=5")
    assert page.status_code == 200
    text = page.data.decode()
    assert "Nothing matched" in text
    assert "Try instead" in text
    assert "without filters" in text
    assert "Popular right now" in text
    # Each alternative leads to the search its count was taken from.
    found = re.search(r'<a href="([^"]+)">“lantern zzzqqq” without filters', text)
    assert found, text
    link = html.unescape(found.group(1))
    assert "mode=keyword" in link and "rating_min" not in link
    counted = re.search(
        r"without filters</a> <span class=\"count\">(\d+) results", text
    )
    followed = client.get(link).data.decode()
    heading = re.search(r'<h1 id="results-title">([^<]*)', followed).group(1)
    assert " ".join(heading.split()).startswith(f"{counted.group(1)} results for")


def test_a_page_past_the_last_says_so_and_leads_back(client):
    first = client.get("/search?q=lantern&per_page=20").data.decode()
    last = int(re.search(r"Page 1 of (\d+)", first).group(1))
    past = client.get(f"/search?q=lantern&page={last + 1}")
    assert past.status_code == 200
    text = past.data.decode()
    assert "is past the last page" in text
    assert "Nothing matched" not in text
    back = html.unescape(
        re.search(r'<a href="([^"]+)"\s*>Back to the first', text).group(1)
    )
    assert "page=1" in back
    assert "Page 1 of" in client.get(back).data.decode()


def test_unknown_search_parameters_are_ignored_by_the_page(client):
    assert client.get("/search?q=lantern&utm_source=mail").status_code == 200


def test_browse_without_categories_lists_every_product(client):
    page = client.get("/browse")
    assert page.status_code == 200
    text = page.data.decode()
    assert "All products" in text
    assert "Categories" not in text  # the sample has none: no category UI
    assert text.count('class="card"') == 20
    assert client.get("/browse?category=Nope").status_code == 404


def test_product_page_has_every_list(client):
    page = client.get("/product/71053").data.decode()
    for title in (
        "Frequently bought together",
        "Similar products",
        "Customers also bought",
    ):
        assert title in page


def test_home_rails_for_a_shopper(client, shopper):
    shopper.like("22086")
    client.get("/product/71053")
    home = client.get("/").data.decode()
    assert "Picked for you" in home
    assert "Because you liked Paper Chain Kit 50&#39;s Christmas" in home
    assert "Recently viewed" in home
    assert 'class="reason"' in home
    assert (
        'aria-pressed="true"'
        not in home.split("Picked for you")[1].split("Because you liked")[0]
    )


def test_liking_from_a_card_goes_back_where_it_was(client, shopper):
    token = csrf_token(client, "/search?q=lantern")
    response = client.post(
        "/product/71053/like",
        data={"csrf_token": token, "liked": "1", "next": "/search?q=lantern"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/search?q=lantern"
    evil = client.post(
        "/product/71053/like",
        data={"csrf_token": token, "liked": "1", "next": "https://evil.example/"},
    )
    assert evil.headers["Location"] == "/"


def test_my_ratings_and_likes_with_undo(app, client, shopper):
    shopper.rate("71053", 4)
    shopper.like("22086")
    page = client.get("/account").data.decode()
    assert "White Metal Lantern" in page and "Paper Chain Kit" in page

    token = csrf_token(client, "/account")
    client.post("/account/ratings/71053/remove", data={"csrf_token": token})
    db = app.extensions["shop"].db
    user = db.user_by_email(shopper.email)
    assert db.rating_of(user.id, "71053") is None
    assert "Your rating was removed." in client.get("/account").data.decode()
    client.post("/account/undo", data={"csrf_token": token})
    assert db.rating_of(user.id, "71053") == 4

    client.post("/account/likes/22086/remove", data={"csrf_token": token})
    assert db.likes(user.id) == []
    client.post("/account/undo", data={"csrf_token": token})
    assert db.likes(user.id) == ["22086"]
    again = client.post(
        "/account/undo", data={"csrf_token": token}, follow_redirects=True
    )
    assert b"nothing to undo" in again.data


def test_error_pages_say_what_to_do(client):
    page = client.get("/product/NO-SUCH")
    assert page.status_code == 404
    assert b"go to the home page" in page.data
    assert b"Traceback" not in page.data


# A catalog with categories


@pytest.fixture()
def category_client(category_app):
    return category_app.test_client()


def test_home_lists_top_categories(category_client):
    page = category_client.get("/").data.decode()
    assert 'aria-label="Categories"' in page
    assert "/browse?category=Home" in page and "/browse?category=Garden" in page


def test_a_category_page_holds_its_descendants(category_client):
    page = category_client.get("/browse?category=Home").data.decode()
    titles = re.findall(r"<h3>([^<]+)</h3>", page)
    assert sorted(titles) == sorted(
        [
            "Blue Enamel Mug",
            "Owl Tea Mug",
            "Floral China Teapot",
            "White Metal Lantern",
            "Star Fairy Lights",
        ]
    )
    # Sub-categories as a facet, with counts
    assert re.search(r"Kitchen</a> <span class=\"count\">3", page)
    assert re.search(r"Lighting</a> <span class=\"count\">2", page)
    # Breadcrumbs
    deep = category_client.get("/browse?category=Home+%3E+Kitchen+%3E+Mugs")
    crumbs = deep.data.decode().split('aria-label="Breadcrumb"')[1].split("</nav>")[0]
    assert re.findall(r">([A-Za-z ]+)</(?:a|span)>", crumbs) == [
        "Shop",
        "All products",
        "Home",
        "Kitchen",
        "Mugs",
    ]


def test_a_category_page_filters_and_sorts_like_search(category_client):
    page = category_client.get(
        "/browse?category=Home&brand=Acme&sort=price_desc"
    ).data.decode()
    assert re.findall(r"<h3>([^<]+)</h3>", page) == [
        "Floral China Teapot",
        "Blue Enamel Mug",
    ]
    rated = category_client.get("/browse?category=Home&rating_min=4.5").data.decode()
    assert re.findall(r"<h3>([^<]+)</h3>", rated) == [
        "Blue Enamel Mug",
        "White Metal Lantern",
    ]
    assert 'class="chip"' in rated


def test_search_facets_offer_categories_and_brands(category_client):
    page = category_client.get("/search?q=mug&mode=keyword").data.decode()
    assert "Home &gt; Kitchen &gt; Mugs" in page
    assert "Acme" in page
    narrowed = category_client.get(
        "/search?q=mug&mode=keyword&category=Home+%3E+Kitchen"
    ).data.decode()
    assert "Owl Tea Mug" in narrowed


def test_suggestions_include_categories(category_app):
    body = category_app.test_client().get("/api/suggest?q=kit").get_json()
    assert {"text": "Home > Kitchen", "kind": "category", "item_id": None} in body[
        "suggestions"
    ]


def test_product_breadcrumbs_follow_its_category(category_client):
    page = category_client.get("/product/M1").data.decode()
    crumbs = page.split('aria-label="Breadcrumb"')[1].split("</nav>")[0]
    assert "/browse?category=Home+%3E+Kitchen+%3E+Mugs" in crumbs
    assert "Blue Enamel Mug" in crumbs


def test_pages_refuse_framing(client):
    response = client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
