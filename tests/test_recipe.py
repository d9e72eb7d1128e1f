"""The recipe file: every setting checked on the way in, named when wrong."""

from __future__ import annotations

import glob
import json
import os

import pytest

from recs.hybrid import HybridConfig

from .conftest import ROOT

# (recipe, words the refusal must hold: the setting and what was wrong)
BAD_RECIPES = [
    ({"weights": {"als": "high"}}, ["weights['als']", "'high'", ">= 0"]),
    ({"frobnicate": 1}, ["frobnicate", "valid settings", "rrf_k"]),
    ({"rrf_k": 0}, ["rrf_k", "got 0", "from 1"]),
    ({"weights": {"als": -1}}, ["weights['als']", "-1", ">= 0"]),
    ({"weights": {"telepathy": 1}}, ["telepathy", "buy-again"]),
    ({"weights": [1, 2]}, ["weights", "[1, 2]"]),
    ({"iterations": True}, ["iterations", "True", "whole number"]),
    ({"factors": 1.5}, ["factors", "1.5", "whole number"]),
    ({"factors": 100000000}, ["factors", "100000000", "4096"]),
    ({"factors": -5}, ["factors", "-5"]),
    ({"neighbours": 0}, ["neighbours", "got 0"]),
    ({"candidates": "100"}, ["candidates", "'100'"]),
    ({"mmr_lambda": 1.5}, ["mmr_lambda", "1.5", "<= 1"]),
    ({"alpha": 0}, ["alpha", "> 0"]),
    ({"regularization": -0.1}, ["regularization", "-0.1"]),
    ({"trending_half_life_days": 0}, ["trending_half_life_days", "> 0"]),
    ({"buy_again_half_life_days": None}, ["buy_again_half_life_days", "None"]),
    ({"session_weight": float("inf")}, ["session_weight", "inf"]),
    ({"filter_already_bought": 1}, ["filter_already_bought", "true or false"]),
    ([], ["JSON object", "list"]),
    ("factors", ["JSON object", "str"]),
]


@pytest.mark.parametrize(("recipe", "words"), BAD_RECIPES)
def test_a_bad_recipe_is_refused_naming_the_setting(tmp_path, recipe, words):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        HybridConfig.load(str(path))
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message


def test_the_report_configs_still_load():
    paths = glob.glob(os.path.join(ROOT, "reports", "*", "config.json"))
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            wrapped = json.load(handle)
        assert "tuning" in wrapped  # the trail around the recipe is allowed
        assert HybridConfig.load(path).to_dict() == wrapped["hybrid"]


def test_left_out_settings_and_sources_keep_their_defaults():
    loaded = HybridConfig.from_dict({"weights": {"als": 3}})
    assert loaded.weights["als"] == 3
    assert loaded.weights["buy-again"] == HybridConfig().weights["buy-again"]
    assert loaded.factors == HybridConfig().factors


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "nope.json", ["nope.json", "no such file"]),
        (lambda tmp: tmp, ["is a folder"]),
        (lambda tmp: _write(tmp / "bad.json", "{factors: 3"), ["bad.json", "JSON"]),
    ],
)
def test_an_unreadable_recipe_file_is_named(tmp_path, make, words):
    with pytest.raises(ValueError) as refused:
        HybridConfig.load(str(make(tmp_path)))
    for word in words:
        assert word in str(refused.value)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path
