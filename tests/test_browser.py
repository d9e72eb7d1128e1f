"""End-to-end: a shopper in headless Chromium against the shop on a real port."""

from __future__ import annotations

import itertools
import os
import re

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.path.join(ROOT, "tests", "artifacts", "screenshots")
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
_emails = (f"browser{os.getpid()}-{n}@example.com" for n in itertools.count())

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing; CI must install it (scripts/install-browser.sh)",
            pytrace=False,
        )
    pytest.skip(
        f"{CHROMIUM} is missing; run scripts/install-browser.sh",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser():

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def card_prices(page) -> list[float]:
    texts = page.locator(".result-list .card .price").all_inner_texts()
    assert texts
    return [float(text.strip("£").replace(",", "")) for text in texts]


def for_you_titles(page) -> list[str]:
    page.goto("/")
    rail = page.locator('[data-rail="for-you"] .card h3')
    return rail.all_inner_texts()


def test_a_shopper_walks_through_the_shop(page):
    email = next(_emails)

    # Register, log out, log in
    page.goto("/")
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Name").fill("Bea")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse 2")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Welcome, Bea!")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse 2")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Hi, Bea")).to_be_visible()

    # Search, with suggestions as the query is typed
    box = page.get_by_label("Search products")
    with page.expect_response(re.compile(r"/api/suggest\?")) as suggested:
        box.press_sequentially("lant", delay=40)
    assert suggested.value.ok
    assert page.locator("#suggestions option").count() > 0
    box.fill("lantern")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=lantern"))
    heading = page.get_by_role("heading", level=1)
    total = int(re.match(r"([\d,]+) result", heading.inner_text())[1].replace(",", ""))
    assert total > 20

    # Filter by a price facet
    facet = page.locator(".facet").filter(has_text="Price").locator("a").nth(1)
    facet.click()
    page.wait_for_url(re.compile(r"price_min=\d"))
    low = float(re.search(r"price_min=([\d.]+)", page.url)[1])
    high = float(re.search(r"price_max=([\d.]+)", page.url)[1])
    assert page.locator(".chip").count() == 1
    assert all(low <= price <= high for price in card_prices(page))

    # Sort by price without a submit button (JavaScript applies the change)
    page.get_by_label("Sort by").select_option("price_asc")
    page.wait_for_url(re.compile(r"sort=price_asc"))
    prices = card_prices(page)
    assert prices == sorted(prices)

    # Open a product, rate and like it without a reload
    before = for_you_titles(page)
    page.goto("/search?q=lantern")
    first = page.locator(".result-list .card h3").first
    title = first.inner_text()
    first.click()
    assert page.get_by_role("heading", level=1).inner_text() == title
    with page.expect_response(re.compile(r"/api/users/me/feedback")) as rated:
        page.get_by_role("button", name="Rate 5 stars").click()
    assert rated.value.ok
    assert page.locator("#my-rating").inner_text() == "Your rating: 5 stars"
    like = page.locator(".feedback").get_by_role("button", name="♡ Like")
    with page.expect_response(re.compile(r"/api/users/me/feedback")):
        like.click()
    assert page.locator(".feedback .like-toggle").get_attribute("aria-pressed") == (
        "true"
    )
    page.reload()
    assert page.locator("#my-rating").inner_text() == "Your rating: 5 stars"

    # The for-you rail follows at once
    after = for_you_titles(page)
    assert after and after != before
    assert title not in after
    expect(
        page.get_by_role("heading", name=f"Because you liked {title}")
    ).to_be_visible()

    # My ratings and likes, with undo
    page.get_by_role("link", name="My ratings & likes").click()
    page.get_by_role("button", name=f"Unlike {title}").click()
    expect(page.get_by_text("Your like was removed.")).to_be_visible()
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("button", name=f"Unlike {title}")).to_be_visible()

    # Log out
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in").first).to_be_visible()
    assert page.locator('[data-rail="for-you"]').count() == 0


def test_browsing_and_search_work_without_javascript(browser, live_server):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Search products").fill("mug")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search\?q=mug"))
    page.get_by_label("Sort by").select_option("price_desc")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"sort=price_desc"))
    assert page.locator(".result-list .card").count() == 20
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url(re.compile(r"page=2"))
    page.get_by_role("link", name="Browse").first.click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("All products")
    context.close()


def test_keyboard_reaches_the_search_box_and_results(page):
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("candle")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=candle"))
    images = page.locator("img")
    for n in range(images.count()):
        assert images.nth(n).get_attribute("alt")


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_screenshots(browser, live_server, viewport):
    width, height = VIEWPORTS[viewport]
    os.makedirs(SCREENSHOTS, exist_ok=True)
    context = browser.new_context(
        base_url=live_server, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    email = next(_emails)
    page.goto("/register")
    page.get_by_label("Name").fill("Cal")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse 3")
    page.get_by_role("button", name="Register").click()
    page.goto("/product/22086")
    page.get_by_role("button", name="Rate 5 stars").click()
    page.wait_for_function(
        "document.querySelector('#my-rating').textContent.includes('5 stars')"
    )
    for name, path in [
        ("home", "/"),
        ("search", "/search?q=lantern"),
        ("product", "/product/71053"),
    ]:
        page.goto(path)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}-{viewport}.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()
