import os
import sys

import pytest

from ablate.spec import PATTERNS, SpecError, apply_pattern, parse_spec, spec_from_depths, stage_pattern


def test_parse_gives_stages_depths_and_canonical_string():
    spec = parse_spec(" C | CCC |MMMM TTTT|MMTT ")
    assert spec.stages == ("C", "CCC", "MMMMTTTT", "MMTT")
    assert spec.depths == (1, 3, 8, 4)
    assert spec.canonical == str(spec) == "C|CCC|MMMMTTTT|MMTT"
    assert parse_spec(spec) == spec


def test_unknown_letter_names_column_stage_and_valid_letters():
    with pytest.raises(SpecError) as err:
        parse_spec("C|CCC|MMQM")
    assert str(err.value) == "'Q' at column 9 (stage 3) is not a block letter; valid: B C G I M P S T X"


def test_lowercase_is_an_unknown_letter():
    with pytest.raises(SpecError, match="'m' at column 3 \\(stage 2\\)"):
        parse_spec("C|m")


def test_empty_spec():
    with pytest.raises(SpecError, match="^empty spec: give stages of block letters separated by '\\|'"):
        parse_spec("   ")


@pytest.mark.parametrize("text, stage, column", [("C||MM", 2, 3), ("|C", 1, 1), ("C|CC|", 3, 6)])
def test_empty_stage_names_the_stage(text, stage, column):
    with pytest.raises(SpecError, match=f"^stage {stage} is empty \\(column {column}\\): every stage needs"):
        parse_spec(text)


def test_wrong_number_of_stages_for_the_widths():
    with pytest.raises(SpecError, match="spec 'C\\|CCC\\|MMMM' has 3 stages but the model is given widths for 4"):
        parse_spec("C|CCC|MMMM", num_stages=4)


def test_non_string_spec():
    with pytest.raises(SpecError, match="a spec must be a string"):
        parse_spec(42)


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_spec_module_does_not_import_torch():
    # Run in a fresh interpreter: this test process has torch loaded already.
    import subprocess
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('s', 'ablate/spec.py'); "
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "assert 'torch' not in sys.modules, 'ablate/spec.py imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.parametrize("name, expected", [
    ("last_half", "MMMMTTTT"), ("last_quarter", "MMMMMMTT"), ("first_half", "TTTTMMMM"),
    ("alternate_am", "TMTMTMTM"), ("alternate_ma", "MTMTMTMT"),
    ("all_mamba", "MMMMMMMM"), ("all_attention", "TTTTTTTT"),
])
def test_patterns_give_the_paper_strings_at_depth_8(name, expected):
    assert stage_pattern(name, 8) == expected


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 7, 8, 11, 12])
def test_last_half_is_the_official_rule(depth):
    stage = stage_pattern("last_half", depth)
    assert stage == "M" * (depth - depth // 2) + "T" * (depth // 2)


def test_random_is_seeded_with_half_attention():
    a, b = stage_pattern("random", 8, seed=3), stage_pattern("random", 8, seed=3)
    assert a == b and a.count("T") == 4
    assert len({stage_pattern("random", 8, seed=s) for s in range(10)}) > 1


def test_even_spaces_attention_away_from_the_ends():
    assert stage_pattern("even", 8, ratio=0.25) == "MMTMMTMM"
    assert stage_pattern("even", 12, ratio=1 / 12) == "MMMMMMTMMMMM"
    for depth in range(1, 13):
        for ratio in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
            assert stage_pattern("even", depth, ratio=ratio).count("T") == round(ratio * depth)


def test_patterns_take_other_letters():
    assert stage_pattern("last_half", 4, mamba="S", attention="T") == "SSTT"
    with pytest.raises(SpecError, match="'Z' is not a block letter"):
        stage_pattern("last_half", 4, mamba="Z")


def test_unknown_pattern_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown placement pattern 'middle'; valid: " + ", ".join(PATTERNS)):
        stage_pattern("middle", 8)


def test_apply_pattern_rewrites_stages_3_and_4():
    spec = apply_pattern("C|CCC|MMMMTTTT|MMTT", "first_half")
    assert spec.canonical == "C|CCC|TTTTMMMM|TTMM"


def test_spec_from_depths_builds_mambavision_layouts():
    assert spec_from_depths((3, 3, 7, 5)).canonical == "CCC|CCC|MMMMTTT|MMMTT"
