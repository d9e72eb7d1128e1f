"""Fifty shoppers for a minute against the production server: no 5xx, no
feedback lost, and an acknowledged rating survives SIGKILL (bench/soak.py)."""

from __future__ import annotations

import json
import os
import shutil

from bench.soak import soak, summary

from .conftest import ROOT

CLIENTS = 50
SECONDS = 60.0
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


def test_fifty_shoppers_for_a_minute_lose_nothing(shop_settings, tmp_path):
    data_dir = tmp_path / "shop"
    shutil.copytree(shop_settings.data_dir, data_dir, symlinks=True)

    figures = soak(str(data_dir), "embedded", clients=CLIENTS, seconds=SECONDS)

    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "soak.json"), "w", encoding="utf-8") as out:
        json.dump(figures, out, indent=2)
    print(summary(figures))
    assert figures["server_errors"] == 0, figures["server_error_samples"]
    assert figures["connection_errors"] == 0
    assert figures["clients_still_running"] == 0
    assert set(figures["by_kind"]) == {"search", "similar", "product page", "feedback"}
    assert figures["feedback_acknowledged"] > CLIENTS
    assert figures["feedback_found"] == figures["feedback_acknowledged"]
    assert figures["killed_after_ack"] == {"status": 200, "found": True}
