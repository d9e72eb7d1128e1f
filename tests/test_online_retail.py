"""Ingest of the UCI Online Retail export: cleaning rules on real lines."""

from __future__ import annotations

import gzip
import itertools

import pytest

from indexer.online_retail import is_product_code, load_online_retail, shop_title
from indexer.sources import IngestError

from .conftest import SAMPLE

HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)


def row(*fields: str) -> str:
    """One export line of a UK customer."""
    return ",".join([*fields, "United Kingdom"])


def real_lines(count: int) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        next(handle)
        return [line.rstrip("\n") for line in itertools.islice(handle, count)]


def write(tmp_path, lines, name="retail.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return str(path)


def test_sample_reads_into_products_and_purchases(retail_sample):
    assert 2000 < len(retail_sample.products) < 4000
    assert len(retail_sample.interactions) > 50_000
    assert not retail_sample.problems
    ids = {p.item_id for p in retail_sample.products}
    assert all(is_product_code(i) for i in ids)
    assert {i.item_id for i in retail_sample.interactions} <= ids
    assert all(i.weight > 0 for i in retail_sample.interactions)
    assert all(p.price is not None and p.price > 0 for p in retail_sample.products)


def test_cancellation_cancels_the_customers_purchase(tmp_path):
    bought = row(
        "581001",
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "6",
        "2011-12-01 08:26:00",
        "2.55",
        "17850.0",
    )
    other = row(
        "581001",
        "71053",
        "WHITE METAL LANTERN",
        "6",
        "2011-12-01 08:26:00",
        "3.39",
        "17850.0",
    )
    cancel = row(
        "C581002",
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "-6",
        "2011-12-01 09:00:00",
        "2.55",
        "17850.0",
    )
    loaded = load_online_retail(write(tmp_path, [bought, other, cancel]))
    pairs = {(i.user_id, i.item_id) for i in loaded.interactions}
    assert pairs == {("17850", "71053")}
    assert loaded.counts["cancelled"] == 1
    assert loaded.counts["returned_pairs"] == 1
    # The returned product is still a product of the shop.
    assert {p.item_id for p in loaded.products} == {"85123A", "71053"}


def test_charges_unknown_customers_and_duplicates(tmp_path):
    lines = [
        row(
            "536544", "DOT", "DOTCOM POSTAGE", "1", "2010-12-01 14:32:00", "569.77", ""
        ),
        row("536569", "M", "Manual", "1", "2010-12-01 15:35:00", "1.25", "16274.0"),
        "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.0,12583.0,France",
        row(
            "536544",
            "21773",
            "DECORATIVE ROSE BATHROOM BOTTLE",
            "1",
            "2010-12-01 14:32:00",
            "2.51",
            "",
        ),
        row(
            "536409",
            "21866",
            "UNION JACK FLAG LUGGAGE TAG",
            "1",
            "2010-12-01 11:45:00",
            "1.25",
            "17908.0",
        ),
        row(
            "536409",
            "21866",
            "UNION JACK FLAG LUGGAGE TAG",
            "1",
            "2010-12-01 11:45:00",
            "1.25",
            "17908.0",
        ),
    ]
    loaded = load_online_retail(write(tmp_path, lines))
    assert {p.item_id for p in loaded.products} == {"21773", "21866"}
    assert [(i.user_id, i.item_id) for i in loaded.interactions] == [("17908", "21866")]
    assert loaded.counts["non_product"] == 3
    assert loaded.counts["no_customer"] == 1
    assert loaded.counts["duplicate"] == 1


def test_varying_description_takes_the_most_frequent(tmp_path):
    lines = [
        row(
            "540001",
            "22139",
            "RETROSPOT TEA SET CERAMIC 11 PC",
            "1",
            "2011-01-04 10:00:00",
            "4.95",
            "12346.0",
        ),
        row(
            "540002",
            "22139",
            "RETROSPOT TEA SET CERAMIC 11 PC",
            "1",
            "2011-01-04 11:00:00",
            "4.95",
            "12347.0",
        ),
        row("540003", "22139", "amazon", "1", "2011-01-04 12:00:00", "4.95", "12348.0"),
    ]
    loaded = load_online_retail(write(tmp_path, lines))
    assert loaded.products[0].title == "Retrospot Tea Set Ceramic 11 PC"


def test_malformed_lines_are_reported_with_their_line_and_skipped(tmp_path):
    good = real_lines(50)
    bad = row(
        "536365",
        "71053",
        "WHITE METAL LANTERN",
        "six",
        "2010-12-01 08:26:00",
        "3.39",
        "17850.0",
    )
    lines = good[:10] + [bad] + good[10:]
    loaded = load_online_retail(write(tmp_path, lines))
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.line == 12  # header is line 1
    assert "six" in problem.reason
    assert loaded.rows_read == 51
    assert len(loaded.interactions) > 0


def test_missing_column_is_refused_with_its_name(tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,CustomerID\n"
        "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,17850.0\n"
    )
    with pytest.raises(IngestError, match="UnitPrice"):
        load_online_retail(str(path))


def test_a_file_with_no_products_is_refused(tmp_path):
    lines = [
        row("536544", "DOT", "DOTCOM POSTAGE", "1", "2010-12-01 14:32:00", "569.77", "")
    ]
    with pytest.raises(IngestError, match="no products"):
        load_online_retail(write(tmp_path, lines))


def test_titles_are_recased_for_the_shop():
    assert shop_title("WHITE HANGING HEART T-LIGHT HOLDER") == (
        "White Hanging Heart T-Light Holder"
    )
    assert shop_title("SET/4 LED LIGHTS") == "Set/4 LED Lights"
