"""Ingest of transaction exports shaped like the UCI Online Retail data set.

Each line is one invoice line: ``InvoiceNo, StockCode, Description, Quantity,
InvoiceDate, UnitPrice, CustomerID, Country``. The file yields products (stock
code, a cleaned description as the title, a typical price) and purchase
interactions (customer, product, quantity, time), cleaned the way a shop owner
would expect:

- cancelled invoices (numbers starting with ``C``) and negative quantities are
  returns: a customer who returned all they bought of a product has no
  interaction with it;
- lines without a customer are kept for product data but give no interaction;
- postage, fees, discounts, manual adjustments and vouchers are not products;
- exact duplicate lines count once;
- a product whose description varies takes its most frequent sold description.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator

from indexer.catalog import Interaction, Product
from indexer.formats.base import ReadResult
from indexer.formats.reading import csv_records
from indexer.formats.text import parse_number, parse_time
from indexer.sources import IngestError, RowProblem, open_text

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)
# Codes that are charges, fees or adjustments rather than goods.
NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
    | {"PADS", "CARRIAGE"}
)
NON_PRODUCT_PREFIXES = ("gift_",)
PRODUCT_CODE = re.compile(r"^(\d{5}[A-Z]{0,3}|DCGS\w+)$", re.IGNORECASE)
# Words kept upper case when titles are re-cased.
KEEP_UPPER = frozenset({"LED", "USB", "DVD", "CD", "UK", "USA", "XL", "PC", "PCS"})


class RetailLoad(ReadResult):
    """What one pass over a retail export produced."""

    def summary(self) -> str:
        c = self.counts
        return (
            f"read {self.rows_read} lines: {len(self.products)} products, "
            f"{len(self.interactions)} purchases by {c['customers']} customers; "
            f"skipped {c['cancelled']} cancellation lines, {c['non_product']} "
            f"non-product lines, {c['no_customer']} lines without a customer, "
            f"{c['duplicate']} duplicates, {c['returned_pairs']} fully returned "
            f"customer-product pairs; refused {len(self.problems)} malformed lines"
        )


def is_product_code(code: str) -> bool:
    """Whether ``code`` names goods rather than a charge, fee or adjustment."""
    if code.upper() in NON_PRODUCT_CODES or code.startswith(NON_PRODUCT_PREFIXES):
        return False
    return bool(PRODUCT_CODE.match(code))


def shop_title(description: str) -> str:
    """An upper-case warehouse description re-cased for a shop front."""
    words = []
    for word in description.split():
        if word.upper() in KEEP_UPPER or (
            any(ch.isdigit() for ch in word) and word.isalnum()
        ):
            words.append(word.upper())  # sizes and codes: 250G, 3D, LED
        else:
            words.append("-".join(part.capitalize() for part in word.split("-")))
    return " ".join(words)


def read_rows(
    path: str, problems: list[RowProblem]
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data line of the export.

    Rows that cannot be split into the header's columns go to ``problems``.
    """
    yield from csv_records(path, problems, REQUIRED_COLUMNS)


def _fields(row: dict[str, str]) -> tuple[str, str, float, float, float]:
    """Invoice, code, quantity, time and price of a row; ``ValueError`` names
    the column at fault."""
    column = "InvoiceNo"
    try:
        invoice = row["InvoiceNo"].strip()
        code = row["StockCode"].strip()
        column = "Quantity"
        quantity = parse_number(row["Quantity"])
        column = "InvoiceDate"
        timestamp = parse_time(row["InvoiceDate"])
        column = "UnitPrice"
        price = parse_number(row["UnitPrice"])
    except ValueError as exc:
        raise ValueError(column, str(exc)) from None
    return invoice, code, quantity, timestamp, price


def load_online_retail(path: str) -> RetailLoad:
    """Read a retail export into cleaned products and purchase interactions.

    Parameters
    ----------
    path : str
        A CSV file, plain, ``.gz`` or ``.zip``; any common delimiter.

    Returns
    -------
    RetailLoad
        Products, interactions, and what was skipped or refused with reasons.
    """
    counts: Counter = Counter()
    problems: list[RowProblem] = []
    descriptions: dict[str, Counter] = defaultdict(Counter)
    prices: dict[str, list[float]] = defaultdict(list)
    customer_prices: dict[str, list[float]] = defaultdict(list)
    seen_lines: set[tuple] = set()
    bought: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    returned: Counter = Counter()
    rows_read = 0

    for line, row in read_rows(path, problems):
        rows_read += 1
        try:
            invoice, code, quantity, timestamp, price = _fields(row)
        except ValueError as exc:
            column, reason = exc.args
            problems.append(RowProblem(path, line, column, reason))
            continue
        customer = (row.get("CustomerID") or "").strip().removesuffix(".0")
        description = " ".join((row.get("Description") or "").split())

        key = (invoice, code, quantity, timestamp, price, customer)
        if key in seen_lines:
            counts["duplicate"] += 1
            continue
        seen_lines.add(key)

        if not is_product_code(code):
            counts["non_product"] += 1
            continue
        code = code.upper()
        if invoice.startswith("C") or quantity < 0:
            counts["cancelled"] += 1
            if customer:
                returned[(customer, code)] += abs(quantity)
            continue
        if price <= 0 or quantity == 0:
            # Zero-price lines are stock adjustments ("damaged", "found").
            counts["adjustment"] += 1
            continue

        if description:
            descriptions[code][description] += 1
        prices[code].append(price)
        if customer:
            customer_prices[code].append(price)
        if not customer:
            counts["no_customer"] += 1
            continue
        bought[(customer, code)].append((quantity, timestamp))

    products = []
    for code, seen in descriptions.items():
        description = seen.most_common(1)[0][0]
        products.append(
            Product(
                item_id=code,
                title=shop_title(description),
                # Lines without a customer carry a higher counter price;
                # the registered customers' price is the shop's list price.
                price=round(
                    statistics.median(customer_prices[code] or prices[code]), 2
                ),
                popularity=0.0,
            )
        )
    known = {p.item_id for p in products}

    interactions = []
    customers = set()
    for (customer, code), events in bought.items():
        if code not in known:
            continue
        if returned[(customer, code)] >= sum(q for q, _ in events):
            counts["returned_pairs"] += 1
            continue
        customers.add(customer)
        for quantity, timestamp in events:
            interactions.append(
                Interaction(customer, code, "purchase", quantity, timestamp)
            )
    counts["customers"] = len(customers)
    interactions.sort(key=lambda i: i.timestamp)

    if not products:
        raise IngestError(
            f"{path}: no products could be read from {rows_read} lines"
            + (f"; first problem: {problems[0]}" if problems else "")
        )
    counts["skipped"] = sum(
        counts[key] for key in ("duplicate", "non_product", "cancelled", "adjustment")
    )
    result = RetailLoad(
        products,
        interactions,
        rows_read,
        problems,
        counts,
        path=path,
        format="retail transactions",
    )
    log.debug("%s: %s", path, result.summary())
    return result


def write_sample(source: str, target: str, start: str, end: str) -> int:
    """Copy the lines of ``source`` dated in ``[start, end)`` to ``target``.

    Used to cut the shipped sample from the full export. Returns lines written.
    """
    written = 0
    with open_text(source) as handle, gzip.open(target, "wt", newline="") as out:
        reader = csv.reader(handle)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if start <= row[4][:10] < end:
                writer.writerow(row)
                written += 1
    return written


def iter_csv_text(text: str) -> Iterator[list[str]]:
    """Rows of a CSV held in memory; a convenience for tests."""
    yield from csv.reader(io.StringIO(text))
