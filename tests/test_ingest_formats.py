"""Every ingest format, read from a few real lines of the shared data sets."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import os
import statistics
import zipfile

import pytest

from indexer.formats import detect_format, read_file, read_sources
from indexer.formats.amazon import read_meta, read_ratings, read_reviews
from indexer.formats.generic import load_mapping
from indexer.formats.text import clean_text, is_residue

from .conftest import ROOT

DATASETS = os.path.join(ROOT, "..", "shared", "datasets")
AMAZON = os.path.join(DATASETS, "amazon-magazine")
META = os.path.join(AMAZON, "meta_Magazine_Subscriptions.json.gz")
REVIEWS = os.path.join(AMAZON, "Magazine_Subscriptions_5.json.gz")
RATINGS = os.path.join(AMAZON, "Magazine_Subscriptions.ratings.csv")
RETAIL = os.path.join(DATASETS, "online-retail", "online_retail.csv.gz")
ICECAT = os.path.join(DATASETS, "icecat-products", "1.json.zip")
ICECAT_MAPPING = os.path.join(ROOT, "data", "mappings", "icecat.json")


def head(path: str, count: int) -> list[str]:
    """The first ``count`` lines of a real file, line ends removed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\r\n") for line in itertools.islice(handle, count)]


def icecat_records(count: int) -> list[dict]:
    with zipfile.ZipFile(ICECAT) as archive:
        return json.loads(archive.read(archive.namelist()[0]))[:count]


def write_gz(path, lines: list[str]) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return str(path)


def test_retail_lines_read_from_a_zip(tmp_path):
    lines = head(RETAIL, 40)
    target = tmp_path / "retail.csv.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("retail.csv", "\n".join(lines) + "\n")
    assert detect_format(str(target)) == "retail"
    loaded = read_file(str(target))
    codes = {row[1] for row in csv.reader(lines[1:])}
    assert {p.item_id for p in loaded.products} <= codes
    assert len(loaded.products) > 20
    assert loaded.interactions and not loaded.problems


def test_amazon_metadata_reads_as_a_shopper_expects(tmp_path):
    lines = head(META, 60)
    records = [json.loads(line) for line in lines]
    loaded = read_meta(
        write_gz(tmp_path / "meta_Magazine_Subscriptions.json.gz", lines)
    )

    asins = {r["asin"] for r in records}
    refused = {p.line for p in loaded.problems}
    assert len(loaded.products) + len(refused) == len(asins)
    assert loaded.counts["skipped"] == len(records) - len(asins)
    by_id = {r["asin"]: r for r in records}
    for product in loaded.products:
        record = by_id[product.item_id]
        for text in (product.title, product.description, product.brand):
            assert "<" not in text and "&amp;" not in text and "  " not in text
        assert not is_residue(product.title)
        levels = [clean_text(level) for level in record["category"]]
        if len(levels) > 1:
            # The store's own name is not repeated as the root of the path.
            assert product.category == " > ".join(levels[1:])
        assert product.brand == clean_text(record["brand"]) or not record["brand"]
        if record["imageURLHighRes"]:
            assert product.image_url == record["imageURLHighRes"][0]
        assert product.price is None  # these lines carry no price, only residue
    residue = [r for r in records if is_residue(clean_text(r["title"]))]
    assert residue and loaded.counts["repaired"] > 0


def test_a_residue_title_is_rebuilt_from_the_description(tmp_path):
    records = [json.loads(line) for line in head(META, 200)]
    record = next(
        r
        for r in records
        if is_residue(clean_text(r["title"])) and " is " in clean_text(r["description"])
    )
    path = write_gz(tmp_path / "meta_x.json.gz", [json.dumps(record)])
    product = read_meta(path).products[0]
    name = clean_text(record["description"]).split(" is ")[0]
    assert product.title.lower() == name.lower()


def test_a_product_nothing_names_is_refused_with_a_reason(tmp_path):
    record = json.loads(head(META, 1)[0])
    record.update(description=[], brand="", details={})
    path = write_gz(tmp_path / "meta_x.json.gz", [json.dumps(record)])
    loaded = read_meta(path)
    assert not loaded.products
    [problem] = loaded.problems
    assert (problem.line, problem.column) == (1, "title")
    assert record["asin"] in problem.reason


def test_a_price_is_parsed_from_text_and_residue_left_empty(tmp_path):
    records = [json.loads(line) for line in head(META, 2)]
    records[0]["price"] = "$1,299.00"
    css = next(
        json.loads(line)["price"]
        for line in head(META, 4000)
        if json.loads(line)["price"].startswith(".")
    )
    records[1]["price"] = css
    path = write_gz(tmp_path / "meta_x.json.gz", [json.dumps(r) for r in records])
    prices = {p.item_id: p.price for p in read_meta(path).products}
    assert prices[records[0]["asin"]] == 1299.0
    assert prices.get(records[1]["asin"]) is None


def test_amazon_reviews_become_reviews_and_ratings(tmp_path):
    lines = head(REVIEWS, 25)
    path = write_gz(tmp_path / "Magazine_Subscriptions_5.json.gz", lines)
    assert detect_format(path) == "amazon-reviews"
    loaded = read_reviews(path)
    ratings = [i for i in loaded.interactions if i.kind == "rating"]
    reviews = [i for i in loaded.interactions if i.kind == "review"]
    expected = {
        (r["reviewerID"], r["asin"], r["overall"], r["unixReviewTime"])
        for r in map(json.loads, lines)
    }
    assert {(i.user_id, i.item_id, i.weight, i.timestamp) for i in ratings} == expected
    assert len(reviews) == len(ratings)


def test_amazon_ratings_csv_without_header(tmp_path):
    lines = head(RATINGS, 30)
    path = tmp_path / "Magazine_Subscriptions.ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(str(path)) == "amazon-ratings"
    loaded = read_ratings(str(path))
    rows = [line.split(",") for line in lines]
    assert [
        (i.item_id, i.user_id, i.weight, i.timestamp) for i in loaded.interactions
    ] == [(item, user, float(stars), float(when)) for item, user, stars, when in rows]


def test_ratings_give_products_their_average_and_count(tmp_path):
    meta_lines = head(META, 80)
    asins = {json.loads(line)["asin"] for line in meta_lines}
    with open(RATINGS) as handle:
        rows = [row for row in csv.reader(handle) if row[0] in asins]
    meta = write_gz(tmp_path / "meta_M.json.gz", meta_lines)
    ratings = tmp_path / "M.ratings.csv"
    ratings.write_text("".join(",".join(row) + "\n" for row in rows))

    read = read_sources([meta, str(ratings)])
    latest: dict[tuple[str, str], tuple[float, float]] = {}
    for item, user, stars, when in rows:
        key = (user, item)
        if key not in latest or float(when) >= latest[key][1]:
            latest[key] = (float(stars), float(when))
    rated = [p for p in read.products if p.rating_count]
    assert rated
    for product in rated:
        stars = [s for (_, item), (s, _) in latest.items() if item == product.item_id]
        assert product.rating_count == len(stars)
        assert product.rating_avg == round(statistics.mean(stars), 2)


def test_icecat_catalog_reads_the_same_as_array_json_lines_and_csv(tmp_path):
    records = icecat_records(30)
    mapping = load_mapping(ICECAT_MAPPING)

    array = tmp_path / "catalog.json.zip"
    with zipfile.ZipFile(array, "w") as archive:
        archive.writestr("catalog.json", json.dumps(records, indent=1))
    lines = write_gz(tmp_path / "catalog.jsonl.gz", [json.dumps(r) for r in records])
    columns = sorted({key for r in records for key in r})
    table = tmp_path / "catalog.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({**r, "ean": ""} for r in records)

    results = [read_file(str(p), mapping) for p in (array, lines, table)]
    for result in results:
        assert [p.item_id for p in result.products] == [r["id"] for r in records]
        for product, record in zip(result.products, records, strict=True):
            assert product.title == record["title"]
            assert product.brand == record["supplier"]
            assert product.price == round(record["price"] / 100, 2)
            assert product.image_url == record["img_high"]
            if "attr_t_product_colour" in record:
                assert product.attributes["Colour"] == record["attr_t_product_colour"]
    assert results[0].products[0].attributes == results[2].products[0].attributes


def test_generic_interactions_through_the_mapping(tmp_path):
    records = icecat_records(10)
    ratings = [line.split(",") for line in head(RATINGS, 10)]
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in records))
    events = tmp_path / "events.csv"
    with open(events, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "sku", "event", "stars", "when"])
        for (_, user, stars, when), record in zip(ratings, records, strict=True):
            writer.writerow([user, record["id"], "rating", stars, when])
    mapping = json.loads(open(ICECAT_MAPPING).read())
    mapping["interactions"] = {
        "user_id": "customer",
        "item_id": "sku",
        "kind_column": "event",
        "weight": "stars",
        "timestamp": "when",
    }
    mapping_path = tmp_path / "mapping.json"
    mapping_path.write_text(json.dumps(mapping))

    read = read_sources([str(catalog), str(events)], str(mapping_path))
    assert len(read.products) == len(records)
    assert sorted((i.user_id, i.weight) for i in read.interactions) == sorted(
        (user, float(stars)) for _, user, stars, _ in ratings
    )
    assert all(p.rating_count == 1 for p in read.products)


def test_a_brand_shared_by_several_products_names_none_of_them(tmp_path):
    records = [json.loads(line) for line in head(META, 200)]
    by_asin = {r["asin"]: r for r in records if is_residue(clean_text(r["title"]))}
    residue = list(by_asin.values())[:3]
    brand = "Fieldstone Lines"  # no company word: a usable name alone
    for record in residue:
        record.update(description=[], brand=brand)
    alone = dict(residue[2], asin="X" + residue[2]["asin"], brand="Fieldstone")

    shared = read_meta(write_gz(tmp_path / "meta_a.json.gz", map(json.dumps, residue)))
    assert not shared.products
    assert all("names 3 products" in p.reason for p in shared.problems)
    single = read_meta(write_gz(tmp_path / "meta_b.json.gz", [json.dumps(alone)]))
    assert [p.title for p in single.products] == ["Fieldstone"]


def test_a_title_naming_a_function_is_a_title_and_script_is_residue():
    from indexer.formats.base import usable_title

    from .conftest import PRODUCTS

    if not os.path.exists(PRODUCTS):
        pytest.skip("the shared Home Depot catalog is absent")
    with gzip.open(PRODUCTS, "rt", encoding="utf-8", newline="") as handle:
        titles = [row["product_title"] for row in csv.DictReader(handle)]
    # "Dual Function (CAFCI and GFCI) Circuit Breaker" and the like: eight
    # real products, judged relevant to shoppers' queries.
    named = [title for title in titles if "Function (" in title]
    assert len(named) >= 8
    assert all(usable_title(title) for title in named)
    assert all(
        usable_title(title) for title in titles if any(c.isalpha() for c in title)
    )
    for script in (
        "function(){return 1}",
        "jQuery(function($) { $('.buy').show() })",
        "var price = 3",
    ):
        assert usable_title(script) is None, script
