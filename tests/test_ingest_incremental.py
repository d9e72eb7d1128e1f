"""Loading again: only changed products change, only changed text is embedded."""

from __future__ import annotations

import csv
import json

import pytest

from indexer.config import Settings, make_backend
from indexer.pipeline import is_loaded, load_catalog
from indexer.store import CatalogStore

from .test_ingest_formats import META, RATINGS, head, write_gz


@pytest.fixture(scope="module")
def meta_records() -> list[dict]:
    """Twelve real products with a usable title, one line each."""
    records, seen = [], set()
    for line in head(META, 400):
        record = json.loads(line)
        if record["asin"] not in seen and not record["title"].startswith("<"):
            seen.add(record["asin"])
            records.append(record)
    return records[:12]


@pytest.fixture(scope="module")
def rating_rows(meta_records) -> list[list[str]]:
    asins = {r["asin"] for r in meta_records}
    with open(RATINGS) as handle:
        return [row for row in csv.reader(handle) if row[0] in asins]


def write_files(folder, records, rows) -> list[str]:
    folder.mkdir(exist_ok=True)
    meta = write_gz(
        folder / "meta_Magazine_Subscriptions.json.gz", map(json.dumps, records)
    )
    ratings = folder / "Magazine_Subscriptions.ratings.csv"
    ratings.write_text("".join(",".join(row) + "\n" for row in rows))
    return [meta, str(ratings)]


def stored(settings) -> dict:
    store = CatalogStore(settings.catalog_path)
    try:
        return {p.item_id: p for p in store.products()}
    finally:
        store.close()


def test_second_load_changes_and_embeds_nothing(
    tmp_path, embedder, meta_records, rating_rows
):
    settings = Settings(data_dir=str(tmp_path / "shop"), search_backend="embedded")
    files = write_files(tmp_path / "in", meta_records, rating_rows)

    first = load_catalog(settings, files, embedder)
    assert first.products == len(meta_records) == first.added
    assert first.encoded > 0
    assert is_loaded(settings, files)

    again = load_catalog(settings, files, embedder)
    assert (again.encoded, again.changed) == (0, 0)
    assert again.summary().startswith(f"read {first.rows_read} rows from 2 file(s)")


def test_a_changed_file_upserts_and_reembeds_only_what_changed(
    tmp_path, embedder, meta_records, rating_rows
):
    settings = Settings(data_dir=str(tmp_path / "shop"), search_backend="embedded")
    files = write_files(tmp_path / "v1", meta_records, rating_rows)
    load_catalog(settings, files, embedder)
    before = stored(settings)

    edited = [dict(r) for r in meta_records[:-1]]  # the last product is gone
    edited[0]["description"] = ["A new description, written for this test."]
    files = write_files(tmp_path / "v2", edited, rating_rows)
    assert not is_loaded(settings, files)
    report = load_catalog(settings, files, embedder)

    assert (report.updated, report.removed, report.added) == (1, 1, 0)
    assert report.encoded == 1
    after = stored(settings)
    assert meta_records[-1]["asin"] not in after
    assert after[edited[0]["asin"]].description.startswith("A new description")
    unchanged = edited[1]["asin"]
    assert after[unchanged] == before[unchanged]


def test_keep_missing_marks_gone_products_unavailable(
    tmp_path, embedder, meta_records, rating_rows
):
    settings = Settings(data_dir=str(tmp_path / "shop"), search_backend="embedded")
    load_catalog(
        settings, write_files(tmp_path / "v1", meta_records, rating_rows), embedder
    )

    files = write_files(tmp_path / "v2", meta_records[:-2], rating_rows)
    report = load_catalog(settings, files, embedder, keep_missing=True)

    assert report.unavailable == 2 and report.removed == 0 and report.encoded == 0
    after = stored(settings)
    assert len(after) == len(meta_records)
    gone = {r["asin"] for r in meta_records[-2:]}
    assert {i for i, p in after.items() if not p.available} == gone
    backend = make_backend(settings)
    try:
        assert backend.status().documents == len(meta_records)
    finally:
        backend.close()
