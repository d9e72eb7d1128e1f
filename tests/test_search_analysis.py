"""Product-title normalisation, and both backends finding sizes, units and
model numbers however a shopper writes them."""

from __future__ import annotations

import pytest

from indexer.search.analysis import normalize, plan_query
from indexer.search.base import SearchRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Units after a number get one spelling, however written.
        ("Leaktite 5-gal. Lid", "leaktite 5 gal lid"),
        ("5 gallon bucket", "5 gal bucket"),
        ("2 Gallons", "2 gal"),
        ("3/4 in. Tee", "3f4 inch tee"),
        ('3/4" tee', "3f4 inch tee"),
        ("3/4 inch tee", "3f4 inch tee"),
        ("8 ft. Post", "8 ft post"),
        ("8' post", "8 ft post"),
        ("18-Volt Drill", "18 volt drill"),
        ("18v drill", "18 volt drill"),
        ("13 Amp Mower", "13 amp mower"),
        ("1/2HP opener", "1f2 hp opener"),
        # Dimensions and model numbers: letters and digits come apart.
        ("2x4", "2 x 4"),
        ("2 x 4", "2 x 4"),
        ("2 in. x 4 in. Stud", "2 inch x 4 inch stud"),
        ("RIDGID X4 18-Volt", "ridgid x 4 18 volt"),
        ("#SC-141", "sc 141"),
        ("sc141", "sc 141"),
        # Mixed numbers and decimals stay one token each.
        ("1-1/2 in. Screws", "1 1f2 inch screws"),
        ("1 1/2 inch screws", "1 1f2 inch screws"),
        ("7.2 cu. ft. Dryer", "7p2 cu ft dryer"),
        # Words that only look like units are left alone.
        ("Faucet in Chrome", "faucet in chrome"),
        ("2 a day", "2 a day"),
        ("Men's Boots", "mens boots"),
        ("Café Curtain", "cafe curtain"),
        ("", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_is_idempotent():
    text = 'Teks #12 1-1/2 in. x 3/4" 7.2 cu. ft. 2x4 18V 5-gal. RB4404'
    assert normalize(normalize(text)) == normalize(text)


def test_plan_fuzzes_only_unknown_words_and_finds_joins_and_splits():
    catalog = {"deck", "over", "deckover", "top", "rail", "door", "wood"}

    def known(words):
        return {word for word in words if word in catalog}

    plan = plan_query("Deck Over toprail dorr wood 2x4", known)
    assert plan.words == ("deck", "over", "toprail", "dorr", "wood", "2", "x", "4")
    # "wood" and "deck" are known: no edits; numbers are never fuzzed.
    assert plan.typos == ("toprail", "dorr")
    assert plan.joined == ("deckover",)
    assert plan.split == (("top", "rail"),)
    assert plan_query("  ", known).words == ()


def top_titles(backend, query: str, n: int = 3) -> list[str]:
    response = backend.search(SearchRequest(query, mode="keyword", per_page=n))
    found = backend.fetch([hit.item_id for hit in response.hits])
    return [found[hit.item_id].title for hit in response.hits]


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        # Written as the shoppers of the judgments write them.
        ("1 gallon deck coat", "1-gal. 4X Deck Coat"),
        ("5 gallon lid", "5-gal. Homer Leakproof Lid"),
        ("2x4 stud", "2 in. x 4 in. x 104-5/8 in."),
        ("3/4 inch black tee", "3/4 in. Black Malleable Iron Threaded Tee"),
        ('3/4" hose', "3/4 in. Dia x 100 ft. Lead Free Water Hose"),
        ("18v impact wrench", "18-Volt"),
        ("12v battery 2 pack", "12-Volt Lithium-Ion Compact Battery (2-Pack)"),
        ("sc141 deckover", "#SC-141"),
        # A typo, words written apart that the catalog joins, and the reverse.
        ("ridgid impact wrnech", "Impact Wrench"),
        ("behr deck over", "DeckOver"),
        ("ridgid impactwrench", "Impact Wrench"),
    ],
)
def test_sizes_and_units_meet_however_written(homedepot_backend, query, wanted):
    titles = top_titles(homedepot_backend, query)
    assert wanted in titles[0], (query, titles)


def test_the_displayed_title_is_the_original(homedepot_backend):
    titles = top_titles(homedepot_backend, "deckover 1 gal")
    assert "BEHR Premium Textured DeckOver 1-gal. #SC-141" in titles[0]
