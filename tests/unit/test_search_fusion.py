"""Reciprocal rank fusion and name ranking: pure functions over ranked lists and names."""

from __future__ import annotations

import pytest

from spanlens_lsp.search.fusion import fuse
from spanlens_lsp.search.names import name_tier, name_words


def test_rrf_scores_each_item_by_its_ranks_in_the_lists_that_have_it() -> None:
    fused = fuse({"name": ["a", "b"], "keywords": ["b", "c"], "meaning": ["c", "b"]}, k=60)
    assert [f.item for f in fused] == ["b", "c", "a"]
    b = fused[0]
    assert b.score == pytest.approx(1 / 62 + 1 / 61 + 1 / 62)
    assert b.sources == ("name", "keywords", "meaning")
    assert fused[2].sources == ("name",)


def test_rrf_weights_and_k_are_parameters_and_ties_keep_first_seen_order() -> None:
    lists = {"keywords": ["a", "b"], "meaning": ["b", "a"]}
    assert [f.item for f in fuse(lists)] == ["a", "b"]  # a tie: the first list's order
    assert [f.item for f in fuse(lists, weights={"meaning": 2.0})] == ["b", "a"]
    # A small k lets one first place outweigh two middling places.
    three = {"x": ["solo", "m", "both"], "y": ["other", "n", "both"]}
    assert fuse(three, k=0.1)[0].item in {"solo", "other"}
    assert fuse(three, k=1000)[0].item == "both"


def test_a_list_of_weight_zero_is_left_out() -> None:
    fused = fuse({"name": ["a"], "keywords": ["b", "a"]}, weights={"keywords": 0})
    assert [(f.item, f.sources) for f in fused] == [("a", ("name",))]


def test_an_item_twice_in_one_list_counts_once_at_its_best_rank() -> None:
    [only] = fuse({"name": ["a", "a"]}, k=60)
    assert only.score == pytest.approx(1 / 61)


def test_names_match_across_case_styles() -> None:
    assert name_words("HTTPServer2.parseConfig") == ["http", "server", "2", "parse", "config"]
    for name in ("parse_config", "parseConfig", "ParseConfig", "Loader.parse_config"):
        assert name_tier(["parse", "config"], name) == 0, name
    assert name_tier(["parse"], "parse_config") == 1
    assert name_tier(["conf", "par"], "parse_config") == 2
    assert name_tier(["arse"], "parse_config") == 3
    assert name_tier(["config", "load"], "Config.load") == 0  # the qualified name
    assert name_tier(["load", "config"], "Config.load") == 2
    assert name_tier(["save"], "parse_config") is None
