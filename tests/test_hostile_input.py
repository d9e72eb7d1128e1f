"""Hostile input through the shop's pages and forms: query syntax, SQL, markup.

The backends' side of hostile queries is in test_search_contract.py; here the
same strings go through the shop front and the API, SQL goes into every form
field, and product text holding markup and script is shown in a real browser.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import threading
from urllib.parse import quote

import pytest

from indexer.catalog import Product
from tests.test_search_contract import HOSTILE_QUERIES

from .conftest import Shopper, csrf_token

# Control characters other than the whitespace HTML uses.
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ITEM = "71053"
_emails = (f"hostile{os.getpid()}-{n}@example.com" for n in itertools.count())
SQL = [
    "' OR '1'='1",
    "x'); DROP TABLE users; --",
    "1; DELETE FROM ratings",
    '" OR ""="',
    "admin'--",
    "1 UNION SELECT token_hash FROM api_tokens",
]


def table_counts(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        names = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {
            name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
        }


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_hostile_search_strings_never_break_a_page(client, mode):
    for text in HOSTILE_QUERIES:
        page = client.get(f"/search?q={quote(text)}&mode={mode}")
        assert page.status_code == 200, (text, page.status_code)
        assert b"Something went wrong" not in page.data
        assert not CONTROL_BYTES.search(page.data), text
        api = client.get(f"/api/search?q={quote(text)}&mode={mode}")
        assert api.status_code == 200, (text, api.get_json())


def test_hostile_suggest_strings_are_answered_or_refused_cleanly(client):
    for text in HOSTILE_QUERIES:
        response = client.get(f"/api/suggest?q={quote(text)}")
        assert response.status_code in (200, 400), (text, response.status_code)
        assert response.is_json


def test_a_query_over_the_limit_is_a_form_error_not_an_error_page(client):
    page = client.get("/search?q=" + "x" * 5000)
    assert page.status_code == 400
    assert b"at most 500 characters" in page.data
    api = client.get("/api/search?q=" + "x" * 5000)
    assert api.status_code == 400
    assert api.get_json()["error"]["parameter"] == "q"


def test_sql_in_every_form_field_is_inert(app, client):
    shop_db = app.extensions["shop"].settings.shop_db_path
    before = table_counts(shop_db)
    registered = []

    # Registration: SQL as the name and the password is stored as given;
    # SQL as the email is not an email address.
    for n, text in enumerate(SQL):
        email = next(_emails)
        person = Shopper(client, email, password=f"{text} pad-{n}")
        response = person.register(name=text)
        assert response.status_code == 302, text
        registered.append((email, text))
        person.logout()
        bad = Shopper(client, text).register()
        assert bad.status_code == 400
        assert b"Enter a valid email address." in bad.data

    # Logging in with SQL as the email or password lets nobody in; a
    # shopper above logs in with an SQL-looking password.
    def log_in(email: str, password: str, next_url: str = ""):
        return client.post(
            "/login" + (f"?next={quote(next_url)}" if next_url else ""),
            data={
                "csrf_token": csrf_token(client, "/login"),
                "email": email,
                "password": password,
            },
            environ_base={"REMOTE_ADDR": "10.7.7.7"},
        )

    for text in SQL:
        assert log_in(text, text).status_code == 401, text
    for text in SQL[:4]:
        assert log_in(registered[1][0], text).status_code == 401, text
    assert b"Hi, " not in client.get("/").data
    email, name = registered[0]
    assert log_in(email, f"{SQL[0]} pad-0", next_url=SQL[1]).status_code == 302
    assert f"Hi, {name}".encode() in client.get("/").data.replace(b"&#39;", b"'")

    # Search and browse parameters, each in turn.
    for field in ("q", "category", "brand", "sort", "mode", "page", "price_min"):
        for text in SQL:
            page = client.get(f"/search?q=lantern&{field}={quote(text)}")
            assert page.status_code in (200, 400), (field, text)
            page = client.get(f"/browse?{field}={quote(text)}")
            assert page.status_code in (200, 400, 404), (field, text)

    # Feedback forms, in the form fields and in the product id of the path.
    token = csrf_token(client, f"/product/{ITEM}")
    for text in SQL:
        rated = client.post(
            f"/product/{ITEM}/rate", data={"csrf_token": token, "stars": text}
        )
        assert rated.status_code == 303
        liked = client.post(
            f"/product/{ITEM}/like", data={"csrf_token": token, "liked": text}
        )
        assert liked.status_code == 303
        for action in ("rate", "like"):
            unknown = client.post(
                f"/product/{quote(text, safe='')}/{action}",
                data={"csrf_token": token, "stars": "5", "liked": "1"},
            )
            assert unknown.status_code == 404, (action, text)
        for kind in ("ratings", "likes"):
            removed = client.post(
                f"/account/{kind}/{quote(text, safe='')}/remove",
                data={"csrf_token": token},
            )
            assert removed.status_code in (303, 302, 404), (kind, text)

    # API tokens: SQL as a token's name is kept as the name, shown as text.
    for text in SQL:
        made = client.post(
            "/account/tokens",
            data={"csrf_token": csrf_token(client, "/account"), "name": text},
        )
        assert made.status_code == 200
    account = client.get("/account").data.decode()
    for text in SQL:
        assert text.replace("'", "&#39;").replace('"', "&#34;") in account
    refused = client.post(
        f"/account/tokens/{quote(SQL[0], safe='')}/revoke",
        data={"csrf_token": csrf_token(client, "/account")},
    )
    assert refused.status_code == 404

    # The JSON API's feedback body.
    bearer = re.search(
        r'id="new-token" readonly value="([^"]+)"',
        client.post(
            "/account/tokens",
            data={"csrf_token": csrf_token(client, "/account"), "name": "sql"},
        ).data.decode(),
    )[1]
    for text in SQL:
        response = client.post(
            "/api/users/me/feedback",
            json={"item_id": text, "kind": "like"},
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"

    # Every table is still there and only grew by what was sent.
    after = table_counts(shop_db)
    assert set(after) == set(before)
    assert after["users"] == before["users"] + len(SQL)
    assert after["api_tokens"] == before["api_tokens"] + len(SQL) + 1
    with sqlite3.connect(shop_db) as db:
        for email, name in registered:
            stored = db.execute("SELECT name FROM users WHERE email = ?", (email,))
            assert stored.fetchone() == (name,)
        names = {row[0] for row in db.execute("SELECT name FROM api_tokens")}
        assert set(SQL) <= names


# Markup and script in product text, shown in a browser

MARKUP = [
    ("XSS1", "<script>window.__xss = 1; alert(1)</script> Lantern"),
    ("XSS2", '<img src=x onerror="window.__xss = 2"> Lantern'),
    ("XSS3", '"><svg onload="window.__xss = 3"></svg> Lantern'),
    ("XSS4", "</title><script>window.__xss = 4</script> Lantern"),
    ("XSS5", "'; window.__xss = 5; ' Lantern"),
]


@pytest.fixture(scope="module")
def markup_server(tmp_path_factory, embedder):
    """A shop whose catalog holds markup in every text field, on a real port."""
    from werkzeug.serving import make_server

    from indexer.config import Settings, make_backend
    from indexer.store import CatalogStore
    from web import create_app

    data_dir = tmp_path_factory.mktemp("markup")
    settings = Settings(data_dir=str(data_dir), search_backend="embedded")
    products = [
        Product(
            item_id,
            title,
            description=f'{title} <b>bold</b> <a href="javascript:window.__xss=9">'
            "link</a>",
            category=f"Home > <i>{item_id}</i>",
            brand=f'<u onclick="window.__xss = 7">{item_id}</u>',
            image_url=f'javascript:window.__xss=8" onerror="window.__xss=6" x="{n}',
            price=5.0 + n,
            popularity=float(10 - n),
        )
        for n, (item_id, title) in enumerate(MARKUP)
    ]
    vectors, _ = embedder.embed_products(products)
    make_backend(settings).build(products, vectors)
    store = CatalogStore(settings.catalog_path)
    try:
        store.replace_catalog(products, [])
        store.set_meta("loaded_at", "1")
    finally:
        store.close()
    app = create_app(settings, embedder=embedder, test_config={"TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.mark.browser
def test_markup_in_product_text_is_shown_never_run(markup_server):
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing; run scripts/install-browser.sh")
    from playwright.sync_api import sync_playwright

    pages = ["/", "/browse", "/search?q=lantern", "/search?q=lantern&mode=keyword"]
    pages += [f"/product/{item_id}" for item_id, _ in MARKUP]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = chromium.new_page(base_url=markup_server)
            dialogs: list[str] = []

            def on_dialog(dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            for path in pages:
                assert page.goto(path).status == 200, path
                page.wait_for_load_state("load")
                # Hover and click what markup could hang handlers on.
                for card in page.locator(".card h3").all()[:3]:
                    card.hover()
                assert page.evaluate("window.__xss") is None, path
                assert not dialogs, (path, dialogs)
                text = page.inner_text("body")
                assert any(title in text for _, title in MARKUP), path
            page.goto(f"/product/{MARKUP[0][0]}")
            heading = page.get_by_role("heading", level=1).inner_text()
            assert heading == MARKUP[0][1]
            assert (
                page.locator("script:not([src])").evaluate_all(
                    "nodes => nodes.filter(n => n.textContent.includes('__xss')).length"
                )
                == 0
            )
        finally:
            chromium.close()


def test_a_catalog_file_loses_its_markup_on_the_way_in(tmp_path, embedder):
    """The loader keeps text and drops tags, so markup in a file never even
    reaches the page; the browser test above covers text that slips past."""
    import json

    from indexer.config import Settings
    from indexer.pipeline import load_catalog
    from indexer.store import CatalogStore

    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        "\n".join(
            json.dumps({"id": item_id, "title": title, "price": 3})
            for item_id, title in MARKUP
        )
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps({"catalog": {"item_id": "id", "title": "title", "price": "price"}})
    )
    settings = Settings(data_dir=str(tmp_path / "shop"), search_backend="embedded")
    load_catalog(settings, str(catalog), embedder, mapping=str(mapping))
    store = CatalogStore(settings.catalog_path)
    try:
        titles = {p.item_id: p.title for p in store.products()}
    finally:
        store.close()
    assert titles
    for item_id, title in titles.items():
        assert "<" not in title and "onerror" not in title, (item_id, title)
        assert title.endswith("Lantern")
