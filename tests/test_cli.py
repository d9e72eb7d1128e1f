"""The ops CLI, run as the ops person runs it."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SAMPLE


def run_cli(
    *args: str, data_dir, es_url: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCH_BACKEND": "embedded"}
    if es_url:
        env["ELASTICSEARCH_URL"] = es_url
    return subprocess.run(
        [sys.executable, "-m", "indexer", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    """The first 3,000 lines of the shipped sample."""
    path = tmp_path_factory.mktemp("export") / "retail.csv"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as source:
        path.write_text("".join(itertools.islice(source, 3001)), encoding="utf-8")
    return path


def test_load_train_status(tmp_path, small_export):
    loaded = run_cli("load", str(small_export), data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded" in loaded.stdout and "products" in loaded.stdout
    assert "embedding" in loaded.stderr  # the progress bar

    trained = run_cli("train", data_dir=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "loss" in trained.stderr

    status = run_cli("status", data_dir=tmp_path)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["index"]["documents"] == report["catalog"]["products"] > 100
    assert report["model"].startswith("model-")

    again = run_cli("load", str(small_export), "--if-changed", data_dir=tmp_path)
    assert again.returncode == 0
    assert "nothing to do" in again.stderr


def test_bad_file_is_refused_and_serving_index_kept(tmp_path, small_export):
    assert run_cli("load", str(small_export), data_dir=tmp_path).returncode == 0
    before = json.loads(run_cli("status", data_dir=tmp_path).stdout)

    broken = tmp_path / "broken.csv"
    broken.write_text("InvoiceNo;StockCode;Description\n1;2;3\n")
    refused = run_cli("load", str(broken), data_dir=tmp_path)
    assert refused.returncode == 2
    assert "missing required column" in refused.stderr

    missing = run_cli("load", str(tmp_path / "nope.csv"), data_dir=tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr

    after = json.loads(run_cli("status", data_dir=tmp_path).stdout)
    assert after["index"]["index"] == before["index"]["index"]
    assert after["catalog"]["products"] == before["catalog"]["products"]
