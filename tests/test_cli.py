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


def test_a_load_that_would_empty_the_catalog_is_refused(tmp_path, small_export):
    assert run_cli("load", str(small_export), data_dir=tmp_path).returncode == 0
    before = json.loads(run_cli("status", data_dir=tmp_path).stdout)
    lines = small_export.read_text(encoding="utf-8").splitlines(keepends=True)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("".join(lines[:40]), encoding="utf-8")

    refused = run_cli("load", str(tiny), data_dir=tmp_path)
    assert refused.returncode == 2
    assert "would remove" in refused.stderr and "--allow-shrink" in refused.stderr
    skipped = run_cli("load", str(tiny), "--keep-other", data_dir=tmp_path)
    assert skipped.returncode == 0 and "leaving it as it is" in skipped.stderr
    after = json.loads(run_cli("status", data_dir=tmp_path).stdout)
    assert after["index"]["index"] == before["index"]["index"]

    shrunk = run_cli("load", str(tiny), "--allow-shrink", data_dir=tmp_path)
    assert shrunk.returncode == 0, shrunk.stderr
    final = json.loads(run_cli("status", data_dir=tmp_path).stdout)
    assert final["catalog"]["products"] < before["catalog"]["products"] / 2


def test_serve_refuses_a_weak_key_before_binding(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")
    served = run_cli("serve", "--port", "8", data_dir=tmp_path)
    assert served.returncode == 2
    assert "SECRET_KEY" in served.stderr and "serving the shop" not in served.stdout
    bad_port = run_cli("serve", "--port", "99999", data_dir=tmp_path)
    assert bad_port.returncode == 2 and "65535" in bad_port.stderr


def test_a_folder_is_not_a_file(tmp_path):
    refused = run_cli("load", str(tmp_path), data_dir=tmp_path / "data")
    assert refused.returncode == 2 and "is a folder" in refused.stderr


def test_evaluate_with_nothing_loaded_says_what_to_do(tmp_path):
    refused = run_cli("evaluate", data_dir=tmp_path / "empty")
    assert refused.returncode == 2
    assert "no catalog loaded" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_train_serves_the_recipe_of_an_evaluation(tmp_path, small_export):
    assert run_cli("load", str(small_export), data_dir=tmp_path).returncode == 0
    # A few days of history: too little to split, and said so plainly.
    evaluated = run_cli(
        "evaluate", "--no-tune", "--out", str(tmp_path), data_dir=tmp_path
    )
    assert evaluated.returncode == 2
    assert "not enough history" in evaluated.stderr
    assert "Traceback" not in evaluated.stderr

    # The recipe of an evaluation's config.json is what the model is served with.
    from recs.hybrid import HybridConfig

    config = {
        "dataset": "x",
        "hybrid": HybridConfig(factors=16, mmr_lambda=0.5).to_dict(),
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    trained = run_cli("train", "--config", str(path), data_dir=tmp_path)
    assert trained.returncode == 0, trained.stderr
    recipe = json.loads(
        (tmp_path / "models" / "current" / "recipe.json").read_text(encoding="utf-8")
    )
    assert recipe["factors"] == 16 and recipe["mmr_lambda"] == 0.5
    assert (tmp_path / "models" / "current" / "cooccurrence.npz").exists()


def test_a_bad_recipe_is_refused_before_anything_is_saved(tmp_path, small_export):
    assert run_cli("load", str(small_export), data_dir=tmp_path).returncode == 0
    assert run_cli("train", "--iterations", "2", data_dir=tmp_path).returncode == 0
    models = tmp_path / "models"
    before = os.readlink(models / "current")
    versions = sorted(os.listdir(models))

    for recipe, named in [
        ({"weights": {"als": "high"}}, "weights['als']"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"rrf_k": 0}, "rrf_k"),
        ({"iterations": True}, "iterations"),
        ({"factors": 100000000}, "factors"),
        ([], "JSON object"),
    ]:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(recipe), encoding="utf-8")
        refused = run_cli("train", "--config", str(path), data_dir=tmp_path)
        assert refused.returncode == 2, (recipe, refused.stderr)
        assert f"error: {path}: " in refused.stderr and named in refused.stderr
        assert "Traceback" not in refused.stderr
    assert os.readlink(models / "current") == before
    assert sorted(os.listdir(models)) == versions

    # A recipe spoilt on disk makes the model unusable, said by name.
    recipe_path = models / "current" / "recipe.json"
    recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
    recipe_path.write_text(json.dumps({**recipe, "rrf_k": -1}), encoding="utf-8")
    status = json.loads(run_cli("status", data_dir=tmp_path).stdout)
    assert "rrf_k" in status["model_problem"] and before in status["model_problem"]


def test_missing_files_and_bad_limits_are_one_line_errors(tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text("{}", encoding="utf-8")
    judgments = tmp_path / "judgments.csv"
    judgments.write_text("search_term,product_uid,relevance\n", encoding="utf-8")
    not_json = tmp_path / "broken.json"
    not_json.write_text("{factors: 3", encoding="utf-8")
    cases = [
        (["train", "--config", "reports/nope.json"], "reports/nope.json: no such"),
        (["train", "--config", str(tmp_path)], f"{tmp_path}: is a folder"),
        (["train", "--config", str(not_json)], f"{not_json}: not valid JSON"),
        (["evaluate", "--config", str(not_json)], f"{not_json}: not valid JSON"),
        (["train", "--factors", "5000"], "factors must be from 1 to 4096, got 5000"),
        (
            ["eval-search", "p.csv", str(tmp_path / "nope.csv"), "--mapping", "m"],
            f"judgments {tmp_path / 'nope.csv'}: no such file",
        ),
        (
            ["eval-search", "p.csv", str(judgments), "--mapping", "/nope.json"],
            "mapping /nope.json: no such file",
        ),
        (
            [
                "eval-search",
                "-",
                str(judgments),
                "--mapping",
                "/nope.json",
                "--no-load",
            ],
            "mapping /nope.json: no such file",
        ),
        (
            ["eval-search", "/nope.csv", str(judgments), "--mapping", str(mapping)],
            "catalog /nope.csv: no such file",
        ),
    ]
    for args, said in cases:
        refused = run_cli(*args, data_dir=tmp_path / "data")
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.strip() == f"error: {said}" or (
            refused.stderr.strip().startswith(f"error: {said}")
            and "\n" not in refused.stderr.strip()
        ), (args, refused.stderr)
    for limit in ("0", "-5", "many"):
        refused = run_cli(
            "eval-search",
            "p",
            "j",
            "--mapping",
            "m",
            "--limit",
            limit,
            data_dir=tmp_path / "data",
        )
        assert refused.returncode == 2
        assert "argument --limit" in refused.stderr and limit in refused.stderr
