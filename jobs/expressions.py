"""The filter language of KPI `where:` / `of:` clauses, e.g. `is_fraud == 1 and country in ['US', 'CA']`.

Text is parsed with `ast` into a small tree of our own; only comparisons of a column with a literal or
another column, `in [...]` / `not in [...]` lists of literals, and / or / not and parentheses pass.
Nothing is ever handed to eval() or compile().
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_LENGTH = 2000
MAX_DEPTH = 40
LiteralValue = bool | int | float | str

_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
}
_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_SINGLE_EQUALS = re.compile(r"(?<![=!<>:])=(?!=)")
_BOOL_NAMES = {"true": True, "false": False}
_HELP = "use comparisons (==, !=, <, <=, >, >=), 'in [...]', and, or, not"


class ExpressionError(ValueError):
    """An expression is not valid, or cannot be evaluated on the given data."""


@dataclass(frozen=True)
class _Column:
    name: str


@dataclass(frozen=True)
class _Literal:
    value: LiteralValue


@dataclass(frozen=True)
class _Compare:
    left: _Column | _Literal
    op: str
    right: _Column | _Literal


@dataclass(frozen=True)
class _Member:
    column: str
    values: tuple[LiteralValue, ...]
    negate: bool


@dataclass(frozen=True)
class _Logic:
    op: str  # "and" | "or" | "not"
    parts: tuple[_Node, ...]


_Node = _Compare | _Member | _Logic


@dataclass(frozen=True)
class Expression:
    """A parsed filter; `evaluate(df)` gives one bool per row (a missing value compares False)."""

    text: str
    columns: frozenset[str]
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        missing = sorted(self.columns - set(frame.columns))
        if missing:
            raise ExpressionError(f"column '{missing[0]}' used in {self.text!r} is not in the data")
        return _evaluate(self._root, frame, self.text)


def parse(text: str) -> Expression:
    """Parse a filter expression, or raise ExpressionError naming the offending construct."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as text, got {type(text).__name__}")
    return _parse(text)


@functools.lru_cache(maxsize=4096)  # a worker evaluates the same few KPI clauses on every window, every cycle
def _parse(text: str) -> Expression:
    source = text.replace("\r", " ").replace("\n", " ").strip()
    if not source:
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is too long ({len(source)} characters, at most {MAX_LENGTH})")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        hint = " (use == to compare)" if _SINGLE_EQUALS.search(source) else ""
        raise ExpressionError(f"cannot parse {_snippet(source)!r}{where}: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply") from None
    except ValueError as exc:  # e.g. a NUL character
        raise ExpressionError(f"cannot parse the expression: {exc}") from None
    root = _build(tree.body, 0)
    return Expression(text=text, columns=frozenset(_columns(root)), _root=root)


# ---------------------------------------------------------------- parsing


def _build(node: ast.expr, depth: int) -> _Node:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return _Logic(op, tuple(_build(value, depth + 1) for value in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _Logic("not", (_build(node.operand, depth + 1),))
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Name):
        raise ExpressionError(
            f"'{node.id}' on its own is not a condition; compare it, e.g. {node.id} == 1")
    if isinstance(node, ast.Constant):
        raise ExpressionError(f"the literal {node.value!r} on its own is not a condition")
    raise ExpressionError(_forbidden(node))


def _compare(node: ast.Compare) -> _Node:
    parts: list[_Node] = []
    left = node.left
    for op, right in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, (ast.In, ast.NotIn)):
            parts.append(_member(left, right, negate=isinstance(op, ast.NotIn)))
        elif isinstance(op, (ast.Is, ast.IsNot)):
            raise ExpressionError("'is' is not allowed; use == or !=")
        else:
            first, second = _operand(left), _operand(right)
            if isinstance(first, _Literal) and isinstance(second, _Literal):
                raise ExpressionError(
                    f"'{_snippet(ast.unparse(node))}' compares two literals; one side must be a column")
            parts.append(_Compare(first, _COMPARE_OPS[type(op)], second))
        left = right
    return parts[0] if len(parts) == 1 else _Logic("and", tuple(parts))


def _member(left: ast.expr, right: ast.expr, *, negate: bool) -> _Member:
    column = _operand(left)
    if not isinstance(column, _Column):
        raise ExpressionError("the left side of 'in' must be a column, e.g. country in ['US', 'CA']")
    if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
        raise ExpressionError(
            f"'in' needs a list of literals on the right, e.g. {column.name} in ['a', 'b']; "
            f"got '{_snippet(ast.unparse(right))}'")
    values = []
    for element in right.elts:
        value = _operand(element)
        if not isinstance(value, _Literal):
            raise ExpressionError(f"the list after 'in' may only hold literals, not the column '{value.name}'")
        values.append(value.value)
    return _Member(column.name, tuple(values), negate)


def _operand(node: ast.expr) -> _Column | _Literal:
    if isinstance(node, ast.Name):
        if node.id in _BOOL_NAMES:
            return _Literal(_BOOL_NAMES[node.id])
        if node.id.startswith("__"):
            raise ExpressionError(f"names starting with '__' are not allowed: '{node.id}'")
        return _Column(node.id)
    if isinstance(node, ast.Constant):
        return _Literal(_literal(node.value))
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and _is_number(node.operand.value)):
        value = node.operand.value
        return _Literal(-value if isinstance(node.op, ast.USub) else value)
    raise ExpressionError(_forbidden(node))


def _literal(value: object) -> LiteralValue:
    if value is None:
        raise ExpressionError("None is not a value here; a missing value never matches a comparison")
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ExpressionError(f"literals of type {type(value).__name__} are not allowed: {value!r}"[:120])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _forbidden(node: ast.AST) -> str:
    text = _snippet(ast.unparse(node))
    if isinstance(node, ast.Call):
        return f"function calls are not allowed: '{_snippet(ast.unparse(node.func))}(...)'"
    if isinstance(node, ast.Attribute):
        return f"attribute access is not allowed: '{text}'"
    if isinstance(node, ast.Subscript):
        return f"subscripts are not allowed: '{text}'"
    if isinstance(node, ast.Lambda):
        return "lambda expressions are not allowed"
    if isinstance(node, ast.NamedExpr):
        return f"assignments (:=) are not allowed: '{text}'"
    if isinstance(node, ast.JoinedStr):
        return f"f-strings are not allowed: '{text}'"
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        symbol, word = ("&", "and") if isinstance(node.op, ast.BitAnd) else ("|", "or")
        return f"'{symbol}' is not allowed, use '{word}': '{text}'"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return f"arithmetic is not allowed: '{text}'"
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return f"comprehensions are not allowed: '{text}'"
    return f"'{text}' is not allowed; {_HELP}"


def _snippet(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _columns(node: _Node) -> set[str]:
    if isinstance(node, _Member):
        return {node.column}
    if isinstance(node, _Compare):
        return {side.name for side in (node.left, node.right) if isinstance(side, _Column)}
    return set().union(*(_columns(part) for part in node.parts))


# ---------------------------------------------------------------- evaluation


def _evaluate(node: _Node, frame: pd.DataFrame, text: str) -> np.ndarray:
    if isinstance(node, _Logic):
        results = [_evaluate(part, frame, text) for part in node.parts]
        if node.op == "not":
            return ~results[0]
        combine = np.logical_and if node.op == "and" else np.logical_or
        return combine.reduce(results) if len(results) > 1 else results[0]
    if isinstance(node, _Member):
        column = frame[node.column]
        present = column.notna().to_numpy(dtype=bool)
        found = column.isin(list(node.values)).to_numpy(dtype=bool, na_value=False)
        return (present & ~found) if node.negate else (present & found)
    left, right = _side(node.left, frame), _side(node.right, frame)
    fast = _numeric_compare(node.op, left, right)
    if fast is not None:
        return fast
    try:
        result = _OPERATORS[node.op](left, right)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(
            f"cannot evaluate {_describe(node)} in {text!r}: {str(exc).splitlines()[0]}") from None
    values = pd.Series(result).to_numpy(dtype=bool, na_value=False)
    for side in (left, right):
        if isinstance(side, pd.Series):
            values = values & side.notna().to_numpy(dtype=bool)
    return values


def _plain_numbers(side: pd.Series | LiteralValue) -> np.ndarray | LiteralValue | None:
    """A numpy-backed numeric or bool column as its array, a number literal as is, else None."""
    if isinstance(side, pd.Series):
        kind = side.dtype.kind if isinstance(side.dtype, np.dtype) else ""
        return side.to_numpy() if kind in "biuf" else None
    return side if isinstance(side, (bool, int, float)) else None


def _numeric_compare(op: str, left: pd.Series | LiteralValue, right: pd.Series | LiteralValue) -> np.ndarray | None:
    """The comparison in numpy when both sides are plain numbers: the same answer as through pandas,
    without its per-call overhead, which dominates when a KPI is evaluated on many windows."""
    a, b = _plain_numbers(left), _plain_numbers(right)
    if a is None or b is None:
        return None
    values = np.asarray(_OPERATORS[op](a, b), dtype=bool)
    if values.ndim == 0:
        return None
    for side in (a, b):
        if isinstance(side, np.ndarray) and side.dtype.kind == "f":
            values = values & ~np.isnan(side)  # a missing value compares False, as everywhere else
    return values


def _side(operand: _Column | _Literal, frame: pd.DataFrame) -> pd.Series | LiteralValue:
    return frame[operand.name] if isinstance(operand, _Column) else operand.value


def _describe(node: _Compare) -> str:
    def show(side: _Column | _Literal) -> str:
        return side.name if isinstance(side, _Column) else repr(side.value)

    return f"'{show(node.left)} {node.op} {show(node.right)}'"
