"""Bad input, each case made from a few real lines altered the way exports break.

Good rows must survive bad ones; a file that cannot be used is refused with
a message naming it, and a refused load leaves the served catalog as it was.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from indexer.config import Settings, make_backend
from indexer.formats import read_file, read_sources
from indexer.formats.amazon import read_meta
from indexer.formats.reading import MAX_FIELD_CHARS
from indexer.pipeline import load_catalog
from indexer.sources import IngestError
from indexer.store import CatalogStore

from .test_ingest_formats import META, RETAIL, REVIEWS, ROOT, head, write_gz


def retail_file(tmp_path, lines: list[str], name="retail.csv", **options) -> str:
    path = tmp_path / name
    newline = options.get("newline", "\n")
    data = (newline.join(lines) + newline).encode(options.get("encoding", "utf-8"))
    path.write_bytes(options.get("prefix", b"") + data)
    return str(path)


@pytest.fixture(scope="module")
def retail_lines() -> list[str]:
    """The header and 40 data lines of the real export."""
    return head(RETAIL, 41)


@pytest.fixture(scope="module")
def clean_load(retail_lines, tmp_path_factory):
    """What the unaltered lines give, to compare every altered file with."""
    path = retail_file(tmp_path_factory.mktemp("clean"), retail_lines)
    return read_file(path)


def ids_and_prices(result) -> list[tuple[str, str, float | None]]:
    return sorted((p.item_id, p.title, p.price) for p in result.products)


def test_semicolons_instead_of_commas(tmp_path, retail_lines, clean_load):
    import csv

    rows = list(csv.reader(retail_lines))
    lines = [";".join(row) for row in rows]
    loaded = read_file(retail_file(tmp_path, lines))
    assert ids_and_prices(loaded) == ids_and_prices(clean_load)
    assert not loaded.problems


def test_byte_order_mark_and_crlf(tmp_path, retail_lines, clean_load):
    path = retail_file(tmp_path, retail_lines, newline="\r\n", prefix=b"\xef\xbb\xbf")
    loaded = read_file(path)
    assert ids_and_prices(loaded) == ids_and_prices(clean_load)
    assert len(loaded.interactions) == len(clean_load.interactions)


def test_missing_required_column_names_it_and_the_file(tmp_path, retail_lines):
    import csv

    rows = [row[:5] + row[6:] for row in csv.reader(retail_lines)]  # no UnitPrice
    path = retail_file(tmp_path, [",".join(row) for row in rows])
    with pytest.raises(IngestError, match="UnitPrice") as caught:
        read_file(path)
    assert path in str(caught.value)


def test_a_line_that_is_not_utf8_is_refused_alone(tmp_path, retail_lines):
    path = tmp_path / "retail.csv"
    lines = [line.encode() for line in retail_lines]
    lines[5] = lines[5].replace(b"WHITE", "WHITÉ".encode("latin-1"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    loaded = read_file(str(path))
    [problem] = loaded.problems
    assert problem.line == 6 and "UTF-8" in problem.reason
    assert loaded.rows_read == len(retail_lines) - 2


def test_empty_files_are_refused(tmp_path):
    for name in ("retail.csv", "meta_x.json.gz"):
        path = tmp_path / name
        if name.endswith(".gz"):
            write_gz(path, [""])
        else:
            path.write_bytes(b"")
        with pytest.raises(IngestError, match="empty"):
            read_file(str(path))


def test_truncated_gzip_is_refused(tmp_path):
    whole = gzip.compress(("\n".join(head(META, 300)) + "\n").encode())
    path = tmp_path / "meta_Magazine_Subscriptions.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IngestError, match="cut short") as caught:
        read_file(str(path))
    assert str(path) in str(caught.value)


def test_a_field_of_several_megabytes(tmp_path, retail_lines):
    lines = list(retail_lines)
    fields = lines[3].split(",")
    fields[2] = "A" * (3 * 1024 * 1024)
    lines[3] = ",".join(fields)
    loaded = read_file(retail_file(tmp_path, lines))
    [problem] = loaded.problems
    assert (problem.line, problem.column) == (4, "Description")
    assert f"{MAX_FIELD_CHARS:,}" in problem.reason
    assert loaded.rows_read == len(retail_lines) - 2

    records = [json.loads(line) for line in head(META, 5)]
    records[2]["description"] = ["word " * 700_000]
    loaded = read_meta(write_gz(tmp_path / "meta.json.gz", map(json.dumps, records)))
    assert [(p.line, p.column) for p in loaded.problems] == [(3, "description")]
    assert len(loaded.products) == len({r["asin"] for r in records}) - 1


def test_duplicate_ids_with_different_data(tmp_path):
    records = [json.loads(line) for line in head(META, 3)]
    changed = dict(records[1], brand="Another Publisher")
    lines = [json.dumps(r) for r in [*records, records[0], changed]]
    loaded = read_meta(write_gz(tmp_path / "meta_x.json.gz", lines))
    assert len(loaded.products) == 3
    [problem] = loaded.problems
    assert (problem.line, problem.column) == (5, "brand")
    kept = next(p for p in loaded.products if p.item_id == records[1]["asin"])
    assert kept.brand == records[1]["brand"]
    assert loaded.counts["skipped"] == 2


def test_thousands_separators_currency_and_time_formats(tmp_path, retail_lines):
    import csv

    header, *rows = list(csv.reader(retail_lines))
    first = rows[0]
    invoice, rest = int(first[0]), first[1:3]
    variants = [
        [str(invoice), *rest, "1,200", first[4], "£" + first[5], *first[6:]],
        [str(invoice + 1), *rest, first[3], first[4].replace(" ", "T") + "Z"]
        + first[5:],
        [str(invoice + 2), *rest, first[3], "12/01/2010 08:26", *first[5:]],
    ]
    lines = [",".join(header)] + [
        ",".join(f'"{f}"' if "," in f else f for f in row) for row in variants
    ]
    loaded = read_file(retail_file(tmp_path, lines))
    assert not loaded.problems
    weights = sorted(i.weight for i in loaded.interactions)
    assert weights == sorted([1200.0, float(first[3]), float(first[3])])
    assert len({i.timestamp for i in loaded.interactions}) == 1
    assert loaded.products[0].price == float(first[5])


def test_a_json_line_that_is_not_json(tmp_path):
    lines = head(META, 6)
    lines[2] = lines[2][: len(lines[2]) // 2]
    loaded = read_meta(write_gz(tmp_path / "meta_x.json.gz", lines))
    [problem] = loaded.problems
    assert problem.line == 3 and "not JSON" in problem.reason
    assert json.loads(lines[0])["asin"] in {p.item_id for p in loaded.products}


def test_nothing_usable_is_refused_naming_the_first_problem(tmp_path):
    lines = [line[:40] for line in head(META, 4)]
    path = write_gz(tmp_path / "meta_x.json.gz", lines)
    with pytest.raises(IngestError, match=r"nothing usable.*meta_x.json.gz:1"):
        read_sources([path])


def test_a_refused_load_changes_nothing_served(tmp_path, embedder, retail_lines):
    settings = Settings(data_dir=str(tmp_path / "shop"), search_backend="embedded")
    good = retail_file(tmp_path, retail_lines[:15])
    first = load_catalog(settings, good, embedder)
    served = make_backend(settings)

    truncated = tmp_path / "retail.csv.gz"
    whole = gzip.compress(("\n".join(retail_lines) + "\n").encode())
    truncated.write_bytes(whole[:-30])
    with pytest.raises(IngestError):
        load_catalog(settings, str(truncated), embedder)

    store = CatalogStore(settings.catalog_path)
    try:
        assert store.count("products") == first.products
        assert store.get_meta("source") == os.path.abspath(good)
        assert served.status().index == first.index
    finally:
        store.close()
        served.close()


def test_the_cli_exits_non_zero_and_names_the_line(tmp_path):
    lines = [line[:40] for line in head(META, 3)]
    path = write_gz(tmp_path / "meta_x.json.gz", lines)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCH_BACKEND": "embedded"}
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "--data-dir", str(tmp_path), "load", path],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert f"{path}:1" in done.stderr and "not JSON" in done.stderr


def test_review_times_in_the_dated_form_when_the_epoch_is_missing(tmp_path):
    records = [json.loads(line) for line in head(REVIEWS, 3)]
    for record in records:
        del record["unixReviewTime"]
    records[1]["reviewTime"] = "not a date"
    loaded = read_file(write_gz(tmp_path / "x_5.json.gz", map(json.dumps, records)))
    [problem] = loaded.problems
    assert (problem.line, problem.column) == (2, "reviewTime")
    times = {
        i.timestamp
        for i in loaded.interactions
        if i.user_id == records[0]["reviewerID"]
    }
    original = json.loads(head(REVIEWS, 1)[0])["unixReviewTime"]
    assert times == {float(original)}
