import numpy as np
import pandas as pd
import pytest

from jobs.expressions import MAX_LENGTH, Expression, ExpressionError, parse


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "amount": [10.0, None, 250.0, 75.5],
        "country": ["US", None, "CA", "FR"],
        "is_fraud": pd.array([1, 0, None, 1], dtype="Int64"),
        "predicted_fraud": [0, 0, 1, 1],
        "flag": [True, False, True, False],
        "event_time": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"]),
    })


@pytest.mark.parametrize(("text", "expected"), [
    ("amount == 10", [True, False, False, False]),
    ("amount != 10", [False, False, True, True]),  # a missing amount matches neither == nor !=
    ("amount < 100", [True, False, False, True]),
    ("amount <= 75.5", [True, False, False, True]),
    ("amount > 75.5", [False, False, True, False]),
    ("amount >= 75.5", [False, False, True, True]),
    ("100 > amount", [True, False, False, True]),
    ("country == 'US'", [True, False, False, False]),
    ('country != "US"', [False, False, True, True]),
    ("country in ['US', 'CA']", [True, False, True, False]),
    ("country not in ['US', 'CA']", [False, False, False, True]),
    ("is_fraud == 1", [True, False, False, True]),
    ("is_fraud == 1 and predicted_fraud == 0", [True, False, False, False]),
    ("is_fraud == predicted_fraud", [False, True, False, True]),
    ("is_fraud != predicted_fraud", [True, False, False, False]),
    ("flag == true", [True, False, True, False]),
    ("flag == False", [False, True, False, True]),
    ("amount > -1 and amount < 1e3", [True, False, True, True]),
    ("10 <= amount < 100", [True, False, False, True]),
    ("not amount == 10", [False, True, True, True]),
    ("country == 'US' or amount > 200", [True, False, True, False]),
    ("(country == 'US' or country == 'FR') and not (is_fraud == 0)", [True, False, False, True]),
    ("amount in [10, 250]", [True, False, True, False]),
    ("event_time >= '2024-01-02'", [False, True, False, True]),
])
def test_evaluates_vectorised_with_missing_values_false(frame: pd.DataFrame, text: str, expected: list[bool]) -> None:
    result = parse(text).evaluate(frame)
    assert isinstance(result, np.ndarray)
    assert result.dtype == bool
    assert result.tolist() == expected


def test_and_binds_tighter_than_or(frame: pd.DataFrame) -> None:
    loose = parse("country == 'US' or country == 'CA' and amount > 1000").evaluate(frame)
    assert loose.tolist() == [True, False, False, False]


def test_columns_text_and_literals_named_like_columns() -> None:
    expression = parse("is_fraud == 1 and predicted_fraud == 0 or country in ['US'] and true == flag")
    assert isinstance(expression, Expression)
    assert expression.columns == frozenset({"is_fraud", "predicted_fraud", "country", "flag"})
    assert expression.text == "is_fraud == 1 and predicted_fraud == 0 or country in ['US'] and true == flag"


def test_multiline_text_from_folded_yaml() -> None:
    expression = parse("is_fraud == 1\nand predicted_fraud == 0")
    frame = pd.DataFrame({"is_fraud": [1, 1], "predicted_fraud": [0, 1]})
    assert expression.evaluate(frame).tolist() == [True, False]


def test_a_column_named_like_a_builtin_is_just_a_column() -> None:
    frame = pd.DataFrame({"open": [1, 2]})
    assert parse("open == 2").evaluate(frame).tolist() == [False, True]


def test_empty_frame_gives_empty_mask() -> None:
    result = parse("amount > 1").evaluate(pd.DataFrame({"amount": pd.Series([], dtype=float)}))
    assert result.dtype == bool and result.shape == (0,)


def test_pyarrow_string_and_categorical_columns() -> None:
    frame = pd.DataFrame({
        "country": pd.array(["US", None, "CA"], dtype="string[pyarrow]"),
        "channel": pd.Categorical(["web", "pos", None]),
    })
    assert parse("country == 'US'").evaluate(frame).tolist() == [True, False, False]
    assert parse("country != 'US'").evaluate(frame).tolist() == [False, False, True]
    assert parse("channel not in ['web']").evaluate(frame).tolist() == [False, True, False]


def test_evaluate_names_a_missing_column(frame: pd.DataFrame) -> None:
    with pytest.raises(ExpressionError, match="column 'amout' used in 'amout > 1' is not in the data"):
        parse("amout > 1").evaluate(frame)


def test_evaluate_names_an_impossible_comparison(frame: pd.DataFrame) -> None:
    with pytest.raises(ExpressionError, match=r"cannot evaluate 'amount < 'x'' in"):
        parse("amount < 'x'").evaluate(frame)


@pytest.mark.parametrize(("text", "message"), [
    ("open('/etc/passwd')", "function calls are not allowed: 'open(...)'"),
    ("__import__('os').system('rm -rf /')", "function calls are not allowed: '__import__('os').system(...)'"),
    ("__import__('os')", "function calls are not allowed: '__import__(...)'"),
    ("amount.__class__ == 1", "attribute access is not allowed: 'amount.__class__'"),
    ("().__class__.__bases__[0] == 1", "subscripts are not allowed"),
    ("amount[0] == 1", "subscripts are not allowed: 'amount[0]'"),
    ("(lambda: 1) == amount", "lambda expressions are not allowed"),
    ("(x := 1) == amount", "assignments (:=) are not allowed"),
    ("country == f'{amount}'", "f-strings are not allowed"),
    ("amount + 1 > 2", "arithmetic is not allowed: 'amount + 1'"),
    ("a == 1 & b == 2", "'&' is not allowed, use 'and'"),
    ("a == 1 | b == 2", "'|' is not allowed, use 'or'"),
    ("[x for x in y] == 1", "comprehensions are not allowed"),
    ("a if b else c", "is not allowed; use comparisons"),
    ("amount is None", "'is' is not allowed; use == or !="),
    ("amount == None", "None is not a value here"),
    ("amount == b'x'", "literals of type bytes are not allowed"),
    ("amount == ...", "literals of type ellipsis are not allowed"),
    ("1 == 1", "'1 == 1' compares two literals; one side must be a column"),
    ("is_fraud", "'is_fraud' on its own is not a condition"),
    ("1", "the literal 1 on its own is not a condition"),
    ("country in other_column", "'in' needs a list of literals on the right"),
    ("country in ['US', other]", "the list after 'in' may only hold literals, not the column 'other'"),
    ("'US' in [country]", "the left side of 'in' must be a column"),
    ("__builtins__ == 1", "names starting with '__' are not allowed: '__builtins__'"),
    ("amount = 1", "use == to compare"),
    ("amount ==", "cannot parse 'amount =='"),
    ("amount == 1; import os", "cannot parse"),
    ("", "the expression is empty"),
    ("   ", "the expression is empty"),
    ("a == '\x00'", "cannot parse"),
])
def test_rejects_everything_outside_the_language(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_rejection_executes_nothing(tmp_path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ExpressionError):
        parse(f"__import__('pathlib').Path({str(marker)!r}).touch() == 1")
    assert not marker.exists()


def test_huge_input_is_refused_by_length() -> None:
    with pytest.raises(ExpressionError, match=r"too long \(\d+ characters, at most 2000\)"):
        parse("a == 1 or " * 100_000 + "a == 1")


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("not " * 400 + "a == 1")
    with pytest.raises(ExpressionError, match="nested parentheses"):
        parse("(" * 300 + "a == 1" + ")" * 300)


def test_longest_allowed_flat_expression_parses() -> None:
    text = " or ".join(["a == 1"] * ((MAX_LENGTH - 6) // 10 + 1))
    assert len(text) <= MAX_LENGTH
    assert parse(text).columns == frozenset({"a"})


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError, match="expected an expression as text, got int"):
        parse(5)  # type: ignore[arg-type]
