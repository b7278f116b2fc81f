"""Rule families: each condition, AND within a rule, order across rules, unknown, errors."""

from __future__ import annotations

import pytest

from segrec.segments import (
    RuleConfig,
    RulesFamilyConfig,
    SegmentConfigError,
    SegmentsConfig,
    assign_segments,
)
from tests.segments.tiny import AS_OF, labels, tiny_data


def _run(*rules: RuleConfig, otherwise: str = "other") -> dict[str, str]:
    cfg = SegmentsConfig(rules={"r": RulesFamilyConfig(rules=list(rules), otherwise=otherwise)})
    return labels(assign_segments(cfg, tiny_data(), AS_OF), "r")


def test_combined_rules_first_match_wins() -> None:
    out = _run(
        RuleConfig("prospect", never_purchased=True),
        RuleConfig("lapsed", lapsed_days=30),
        RuleConfig("big", spent_over=50, days=30),
        RuleConfig("b_buyer", bought="B", days=7),
    )
    assert out == {
        "c1": "b_buyer",  # spent 35 in 30 days, bought B on 02-28
        "c2": "lapsed",  # last purchase 01-15
        "c3": "big",  # 60 in 30 days
        "c4": "prospect",  # buys only after as_of
        "c5": "unknown",  # the 'big' rule cannot be decided: its revenue is unknown
        "c6": "prospect",
        "c7": "other",  # 02-01 is within 30 days; spent 20; bought A, not B
    }


def test_conditions_of_one_rule_are_anded() -> None:
    out = _run(RuleConfig("a_and_spend", bought="A", spent_over=15, days=30))
    assert {c for c, label in out.items() if label == "a_and_spend"} == {"c1", "c7"}


def test_same_label_twice_ors_the_rules() -> None:
    out = _run(RuleConfig("x", bought="C"), RuleConfig("x", never_purchased=True))
    assert {c for c, label in out.items() if label == "x"} == {"c3", "c4", "c6"}


def test_category_window_counts_days_back_from_as_of() -> None:
    out = _run(RuleConfig("recent_a", bought="A", days=20))  # since 02-10 00:00
    assert {c for c, label in out.items() if label == "recent_a"} == {"c1"}


def test_a_false_condition_decides_even_when_another_is_unknown() -> None:
    out = _run(RuleConfig("b_big", bought="A", spent_over=1, days=7))
    assert out["c5"] == "other"  # c5 bought no A: the rule is false whatever its spend


def test_errors_name_the_family_rule_and_field() -> None:
    cfg = SegmentsConfig(
        rules={
            "r": RulesFamilyConfig(
                rules=[
                    RuleConfig("empty"),
                    RuleConfig("typo", bought="Z"),
                    RuleConfig("attr", bought="A", bought_attribute="colour"),
                    RuleConfig("unknown", never_purchased=True),
                    RuleConfig("neg", spent_over=1, days=0),
                ]
            )
        }
    )
    with pytest.raises(SegmentConfigError) as err:
        assign_segments(cfg, tiny_data(), AS_OF)
    problems = "\n".join(err.value.problems)
    assert "segments.rules.r.rules[0]: set one of never_purchased" in problems
    assert "segments.rules.r.rules[1].bought: no item has category = 'Z'" in problems
    assert "segments.rules.r.rules[2].bought_attribute: no item attribute 'colour'" in problems
    assert "segments.rules.r.rules[3].label: give a label other than 'unknown'" in problems
    assert "segments.rules.r.rules[4].days: must be >= 1" in problems
