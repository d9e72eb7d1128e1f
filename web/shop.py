"""The shop front: home, browsing, search, product pages and feedback."""

from __future__ import annotations

import logging
import time
import zlib

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from indexer.catalog import category_ancestors
from indexer.search.base import (
    PRICE_BUCKETS,
    RATING_BUCKETS,
    Filters,
    SearchError,
    SearchRequest,
)
from web.auth import safe_next
from web.params import (
    CONTROL_CHARACTERS,
    SEARCH_PARAMS,
    BadParameter,
    search_request,
)
from web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("shop", __name__)

RAIL_SIZE = 12
SMALL_RAIL = 6
# How many "because you liked" rails the home page shows at most.
LIKED_RAILS = 2
SORT_LABELS = (
    ("relevance", "Best match"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("rating", "Top rated"),
)
# Why a for-you pick is there, the strongest reason first.
SOURCE_REASONS = {
    "buy-again": "Buy it again",
    "collaborative": "Shoppers like you bought it",
    "co-occurrence": "Often bought by the same shoppers",
    "content": "Like things you liked",
    "popularity": "Popular now",
}


def unless_search_is_down(rail, *args, **kwargs) -> list:
    """A rail that needs the search backend, or none while it is down: the
    rest of the page still shows."""
    try:
        return rail(*args, **kwargs)
    except SearchError as exc:
        log.debug("rail %s left out: %s", getattr(rail, "__name__", rail), exc)
        return []


def my_likes() -> set[str]:
    if not current_user.is_authenticated:
        return set()
    return set(services().db.likes(current_user.id))


def reason_text(sources: list[str]) -> str:
    return next((SOURCE_REASONS[s] for s in SOURCE_REASONS if s in sources), "")


@bp.get("/")
def home():
    """Trending products, and the shopper's own rails when logged in."""
    shop = services()
    for_you, liked_rails, recent = [], [], []
    if current_user.is_authenticated:
        history = shop.db.history(current_user.id)
        seen = {item_id for item_id, strength in history.items() if strength != 0}

        # Picked for you: the shopper's factors are solved from this history
        # now, so feedback given a moment ago already counts.
        if any(strength > 0 for strength in history.values()):
            recommendations = unless_search_is_down(
                shop.recommender.for_you,
                history,
                RAIL_SIZE,
                session_only=shop.db.only_views(current_user.id),
            )
            for_you = [(r.product, reason_text(r.sources)) for r in recommendations]

        # Because you liked X: one rail per recent like or good rating.
        anchors = list(shop.db.likes(current_user.id))
        anchors += [
            i for i, stars, _ts in shop.db.ratings(current_user.id) if stars >= 4
        ]
        for anchor in list(dict.fromkeys(anchors))[:LIKED_RAILS]:
            liked = shop.product(anchor)
            if liked is None:
                continue
            picks = unless_search_is_down(
                shop.recommender.because_you_liked, anchor, SMALL_RAIL, seen
            )
            products = shop.products([r.item_id for r in picks])
            if products:
                liked_rails.append((liked, products))

        recent = shop.products(shop.db.recent_views(current_user.id, SMALL_RAIL))
    trending = shop.products(shop.recommender.trending(RAIL_SIZE))
    return render_template(
        "home.html",
        trending=trending,
        for_you=for_you,
        liked_rails=liked_rails,
        recent=recent,
        likes=my_likes(),
        categories=shop.catalog.children(),
    )


def filters_active(filters: Filters) -> bool:
    return bool(
        filters.price_min is not None
        or filters.price_max is not None
        or filters.categories
        or filters.brands
        or filters.rating_min is not None
    )


def facet_links(args: MultiDict, response, location: str = "") -> dict:
    """Each facet value with its count, whether it is on, and the URL that
    turns it on or off; the page goes back to 1 on any change."""
    endpoint = request.endpoint

    def url(changes: dict) -> str:
        merged = MultiDict(args)
        merged.pop("page", None)
        for name, values in changes.items():
            merged.setlist(name, values)
        return url_for(endpoint, **merged.to_dict(flat=False))

    def toggled(name: str, value: str) -> tuple[bool, str]:
        current = args.getlist(name)
        on = value in current
        values = [v for v in current if v != value] if on else [*current, value]
        return on, url({name: values})

    links: dict[str, list[dict]] = {}
    if endpoint == "shop.browse":
        # Browsing: the category facet lists the children of where we are.
        links["category"] = [
            {
                "label": bucket.key.split(" > ")[-1],
                "count": bucket.count,
                "on": False,
                "url": url({"category": [bucket.key]}),
            }
            for bucket in response.facets.get("category", [])
            if bucket.key != location
        ]
    else:
        links["category"] = []
        for bucket in response.facets.get("category", []):
            on, link = toggled("category", bucket.key)
            links["category"].append(
                {"label": bucket.key, "count": bucket.count, "on": on, "url": link}
            )
    links["brand"] = []
    for bucket in response.facets.get("brand", []):
        on, link = toggled("brand", bucket.key)
        links["brand"].append(
            {"label": bucket.key, "count": bucket.count, "on": on, "url": link}
        )
    links["price"] = []
    counts = {b.key: b.count for b in response.facets.get("price", [])}
    for key, low, high in PRICE_BUCKETS:
        low_text = "" if low is None else f"{low:g}"
        # Buckets exclude their upper end; the filter includes it, so stop
        # just below the next bucket.
        high_text = "" if high is None else f"{high - 0.01:.2f}"
        on = args.get("price_min", "") == low_text and (
            args.get("price_max", "") == high_text
        )
        if counts.get(key) or on:
            links["price"].append(
                {
                    "label": price_label(low, high),
                    "count": counts.get(key, 0),
                    "on": on,
                    "url": url(
                        {"price_min": [], "price_max": []}
                        if on
                        else {"price_min": [low_text], "price_max": [high_text]}
                    ),
                }
            )
    links["rating"] = []
    counts = {b.key: b.count for b in response.facets.get("rating", [])}
    for key, low in RATING_BUCKETS:
        on = args.get("rating_min", "") == f"{low:g}"
        if counts.get(key) or on:
            links["rating"].append(
                {
                    "label": f"{low:g}★ and up",
                    "count": counts.get(key, 0),
                    "on": on,
                    "url": url({"rating_min": [] if on else [f"{low:g}"]}),
                }
            )
    return links


def price_label(low: float | None, high: float | None) -> str:
    if low is None:
        return f"Under £{high:g}"
    if high is None:
        return f"£{low:g} and over"
    return f"£{low:g} to £{high:g}"


def active_filters(args: MultiDict, keep_category: bool = False) -> list[dict]:
    """The filters in force, each with the URL that removes it."""
    endpoint = request.endpoint
    chips = []

    def without(name: str, value: str | None = None) -> str:
        merged = MultiDict(args)
        merged.pop("page", None)
        if value is None:
            merged.pop(name, None)
        else:
            merged.setlist(name, [v for v in args.getlist(name) if v != value])
        return url_for(endpoint, **merged.to_dict(flat=False))

    if not keep_category:
        for value in args.getlist("category"):
            if value:
                chips.append({"label": value, "url": without("category", value)})
    for value in args.getlist("brand"):
        if value:
            chips.append({"label": value, "url": without("brand", value)})
    low, high = args.get("price_min"), args.get("price_max")
    if low or high:
        merged = MultiDict(args)
        for name in ("page", "price_min", "price_max"):
            merged.pop(name, None)
        label = f"£{low or '0'} to £{high}" if high else f"£{low} and over"
        chips.append(
            {"label": label, "url": url_for(endpoint, **merged.to_dict(flat=False))}
        )
    if args.get("rating_min"):
        chips.append(
            {"label": f"{args['rating_min']}★ and up", "url": without("rating_min")}
        )
    return chips


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-min(total, 1000) // per_page))


@bp.get("/search")
def search():
    """Search results with facets, sorting and pages."""
    shop = services()
    unknown = sorted(set(request.args) - set(SEARCH_PARAMS))
    args = MultiDict(
        [(k, v) for k, v in request.args.items(multi=True) if k not in unknown]
    )
    try:
        query = search_request(args)
    except BadParameter as exc:
        return render_template(
            "search.html",
            error=f"We couldn't use {exc.name!r}: {exc.message}.",
            query=None,
            args=args,
        ), 400
    if not query.query:
        return render_template(
            "search.html",
            query=None,
            response=None,
            args=args,
            categories=shop.catalog.children(),
            trending=shop.products(shop.recommender.trending(SMALL_RAIL)),
            likes=my_likes(),
        )
    response = shop.search(query)
    products = [product for _, product in shop.hit_products(response.hits)]
    alternatives, fallback = [], []
    if response.total == 0:
        alternatives = search_alternatives(query)
        fallback = shop.products(shop.recommender.trending(SMALL_RAIL))
    return render_template(
        "search.html",
        query=query,
        response=response,
        products=products,
        pages=page_count(response.total, query.per_page),
        facets=facet_links(args, response),
        chips=active_filters(args),
        sorts=SORT_LABELS,
        args=args,
        alternatives=alternatives,
        fallback=fallback,
        likes=my_likes(),
    )


def search_alternatives(query: SearchRequest) -> list[dict]:
    """Searches likely to find something when ``query`` found nothing: the
    same words without filters, then each word on its own."""
    shop = services()
    found = []
    if filters_active(query.filters):
        total = shop.search(SearchRequest(query.query, query.mode, per_page=1)).total
        if total:
            found.append(
                {
                    "label": f"“{query.query}” without filters",
                    "count": total,
                    "url": url_for("shop.search", q=query.query, mode=query.mode),
                }
            )
    words = query.query.split()
    if len(words) > 1:
        for word in words[:5]:
            total = shop.search(SearchRequest(word, "keyword", per_page=1)).total
            if total:
                found.append(
                    {
                        "label": f"“{word}”",
                        "count": total,
                        "url": url_for("shop.search", q=word, mode="keyword"),
                    }
                )
    for suggestion in shop.suggest(query.query, 3):
        found.append(
            {
                "label": suggestion.text,
                "count": None,
                "url": url_for("shop.product", item_id=suggestion.item_id)
                if suggestion.item_id
                else url_for("shop.browse", category=suggestion.text),
            }
        )
    return found


@bp.get("/browse")
def browse():
    """Every product, or one category and those below it, with facets."""
    shop = services()
    catalog = shop.catalog
    allowed = set(SEARCH_PARAMS) - {"q", "mode"}
    args = MultiDict(
        [(k, v) for k, v in request.args.items(multi=True) if k in allowed]
    )
    try:
        query = search_request(args)
    except BadParameter as exc:
        return render_template(
            "browse.html",
            error=f"We couldn't use {exc.name!r}: {exc.message}.",
            args=args,
            location="",
            crumbs=[],
        ), 400
    location = query.filters.categories[0] if query.filters.categories else ""
    if location and not catalog.is_category(location):
        abort(404, f"There is no category called “{location}”.")
    response = catalog.browse(
        query.filters, query.sort, query.page, query.per_page, parent=location
    )
    crumbs = [
        {"label": path.split(" > ")[-1], "url": url_for("shop.browse", category=path)}
        for path in category_ancestors(location)
    ]
    return render_template(
        "browse.html",
        location=location,
        crumbs=crumbs,
        response=response,
        query=query,
        products=shop.products([hit.item_id for hit in response.hits]),
        pages=page_count(response.total, query.per_page),
        facets=facet_links(args, response, location),
        chips=active_filters(args, keep_category=True),
        sorts=(("relevance", "Most popular"), *SORT_LABELS[1:]),
        args=args,
        likes=my_likes(),
    )


@bp.get("/product/<item_id>")
def product(item_id: str):
    """A product's details, similar products and what its buyers also bought."""
    shop = services()
    found = shop.product(item_id)
    if found is None:
        abort(404, "That product isn't in the catalog (any more).")
    similar = shop.products(
        [
            i
            for i, _ in unless_search_is_down(
                shop.recommender.similar, item_id, SMALL_RAIL
            )
        ]
    )
    together = shop.products([i for i, _ in shop.bought_together(item_id, 4)])
    also_bought = shop.products(
        [i for i, _ in shop.recommender.also_bought(item_id, SMALL_RAIL)]
    )
    my_rating = liked = None
    if current_user.is_authenticated:
        shop.db.record_view(current_user.id, item_id)
        my_rating = shop.db.rating_of(current_user.id, item_id)
        liked = item_id in shop.db.likes(current_user.id)
    crumbs = [
        {"label": path.split(" > ")[-1], "url": url_for("shop.browse", category=path)}
        for path in category_ancestors(found.category)
        if shop.catalog.is_category(path)
    ]
    return render_template(
        "product.html",
        product=found,
        crumbs=crumbs,
        similar=similar,
        together=together,
        also_bought=also_bought,
        my_rating=my_rating,
        liked=liked,
        likes=my_likes(),
    )


def back_to_product(item_id: str):
    target = request.form.get("next")
    if target:
        return redirect(safe_next(target), 303)
    return redirect(url_for("shop.product", item_id=item_id), 303)


@bp.post("/product/<item_id>/rate")
@login_required
def rate(item_id: str):
    """Save the shopper's 1-5 star rating."""
    shop = services()
    if shop.product(item_id) is None:
        abort(404)
    try:
        stars = int(request.form.get("stars", ""))
        shop.db.rate(current_user.id, item_id, stars)
    except ValueError:
        flash("Choose 1 to 5 stars.")
        return back_to_product(item_id)
    flash(f"Thanks! You rated this {stars} star{'s' if stars != 1 else ''}.")
    return back_to_product(item_id)


@bp.post("/product/<item_id>/like")
@login_required
def like(item_id: str):
    """Like or unlike a product."""
    shop = services()
    found = shop.product(item_id)
    if found is None:
        abort(404)
    liked = request.form.get("liked", "1") == "1"
    shop.db.set_like(current_user.id, item_id, liked)
    flash(
        f"Added {found.title} to your likes."
        if liked
        else f"Removed {found.title} from your likes."
    )
    return back_to_product(item_id)


@bp.app_template_filter("money")
def money(value) -> str:
    return "Price on request" if value is None else f"£{value:,.2f}"


@bp.app_template_filter("clean_text")
def clean_text(value: str) -> str:
    """Text a shopper typed, with control characters made spaces."""
    return CONTROL_CHARACTERS.sub(" ", value)


@bp.app_template_filter("hue")
def hue(item_id: str) -> int:
    """A stable colour for a product's placeholder image."""
    return zlib.crc32(item_id.encode()) % 360


@bp.app_template_filter("when")
def when(timestamp: float) -> str:
    return time.strftime("%-d %b %Y", time.localtime(timestamp))
