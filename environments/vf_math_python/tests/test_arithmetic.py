"""The generated arithmetic dataset: reproducible, correct, disjoint splits, difficulty."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vf_math_python.arithmetic import (
    PRESETS,
    ArithmeticSpec,
    arithmetic_splits,
    evaluate_text,
    generate_arithmetic,
    resolve_difficulty,
)


def test_same_seed_same_rows_other_seed_other_rows():
    assert generate_arithmetic(50, seed=3) == generate_arithmetic(50, seed=3)
    assert generate_arithmetic(50, seed=3) != generate_arithmetic(50, seed=4)


def test_answers_match_the_rendered_expressions():
    for row in generate_arithmetic(300, seed=1, difficulty="mixed"):
        value = evaluate_text(row["info"]["expression"])
        assert Fraction(row["answer"]) == value, row
        assert row["question"].startswith(f"What is {row['info']['expression']}?")


def test_difficulty_presets_shape_the_problems():
    for name, spec in PRESETS.items():
        for row in generate_arithmetic(100, seed=0, difficulty=name):
            assert row["difficulty"] == name and row["info"]["level"] == spec.level
            expression = row["info"]["expression"]
            numbers = [int(t) for t in expression.replace("(", " ").replace(")", " ").split()
                       if t.isdigit()]
            assert len(numbers) == spec.num_ops + 1
            assert all(len(str(n)) <= spec.max_digits for n in numbers)
            if not spec.fractions:
                assert "/" not in row["answer"]
    easy = generate_arithmetic(100, seed=0, difficulty="easy")
    assert all(set(r["info"]["expression"]) <= set("0123456789 +-") for r in easy)
    hard = generate_arithmetic(200, seed=0, difficulty="hard")
    assert any("/" in r["answer"] for r in hard)  # fractional answers occur
    assert any("(" in r["info"]["expression"] for r in hard)


def test_mixed_covers_every_level_evenly():
    rows = generate_arithmetic(300, seed=0, difficulty="mixed")
    counts = {name: sum(r["difficulty"] == name for r in rows) for name in PRESETS}
    assert counts == {"easy": 100, "medium": 100, "hard": 100}


def test_custom_difficulty():
    rows = generate_arithmetic(40, seed=0, difficulty={"num_ops": 6, "ops": "*", "max_digits": 1,
                                                       "min_digits": 1, "name": "products"})
    for row in rows:
        assert row["difficulty"] == "products"
        assert row["info"]["expression"].count("×") == 6


@pytest.mark.parametrize("parentheses", [False, True])
def test_digits_per_number(parentheses):
    rows = generate_arithmetic(50, seed=0, difficulty={"digits_per_number": [3, 2], "num_ops": 1, "ops": "*",
                                                       "parentheses": parentheses})
    for row in rows:
        left, right = (int(t) for t in row["info"]["expression"].split(" × "))
        assert 100 <= left <= 999 and 10 <= right <= 99
        assert int(row["answer"]) == left * right
    three = generate_arithmetic(30, seed=0, difficulty={"digits_per_number": [1, 2, 3], "num_ops": 2,
                                                        "ops": "+", "parentheses": parentheses})
    for row in three:
        numbers = [t for t in row["info"]["expression"].replace("(", "").replace(")", "").split()
                   if t.isdigit()]
        assert [len(n) for n in numbers] == [1, 2, 3]
    with pytest.raises(ValueError, match="digits_per_number needs num_ops"):
        ArithmeticSpec("x", num_ops=2, digits_per_number=(3, 2))


def test_level_numbers_and_bad_difficulties():
    assert resolve_difficulty(2) == [PRESETS["medium"]]
    assert len(resolve_difficulty(None)) == 3
    with pytest.raises(ValueError, match="Unknown arithmetic difficulty 'impossible'"):
        resolve_difficulty("impossible")
    with pytest.raises(ValueError, match="Unknown arithmetic difficulty fields"):
        resolve_difficulty({"digits": 3})
    with pytest.raises(ValueError, match="ops must be"):
        ArithmeticSpec("x", ops="^")


def test_train_and_eval_are_disjoint():
    train, evaluation = arithmetic_splits(1000, 200, seed=0)
    assert len(train) == 1000 and len(evaluation) == 200
    expressions = {r["info"]["expression"] for r in train}
    assert not expressions & {r["info"]["expression"] for r in evaluation}
    assert len(expressions) == 1000


def test_too_many_distinct_problems_is_a_clear_error():
    tiny = {"min_digits": 1, "max_digits": 1, "num_ops": 1, "ops": "+", "name": "tiny"}
    with pytest.raises(RuntimeError, match=r"Asked for 500 train problems, but only 100 distinct"):
        generate_arithmetic(500, seed=0, difficulty=tiny)
    with pytest.raises(RuntimeError, match=r"only 60 distinct ones .*\(40 are in the other split\)"):
        arithmetic_splits(100, 40, 0, tiny)
