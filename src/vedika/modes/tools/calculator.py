"""Arithmetic for the calculator tool: Python's parser, a whitelist walk, never `eval`.

Only numbers, `+ - * / // % **` (and `^` as a power), parentheses, a few constants
and functions are allowed; names, attributes, calls of anything else, subscripts,
comprehensions, strings and lambdas are refused. Sizes are bounded: the expression's
length and node count, exponents, and the size of every intermediate integer, so
`9**9**9` or `factorial(10**6)` are refused instead of eating the CPU.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 4096  # about 1,233 decimal digits
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 400

Number = int | float


class CalcError(ValueError):
    """The expression is not allowed, not valid, or too big; the message says which."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if isinstance(n, float):
        if not n.is_integer():
            raise CalcError("factorial needs a whole number.")
        n = int(n)
    if n < 0 or n > MAX_FACTORIAL:
        raise CalcError(f"factorial works for 0 to {MAX_FACTORIAL}.")
    return math.factorial(n)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "degrees": math.degrees,
    "radians": math.radians,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "factorial": _factorial,
    "hypot": math.hypot,
}


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or CalcError with a sentence."""
    text = (expression or "").strip()
    if not text:
        raise CalcError("The expression is empty.")
    if len(text) > MAX_CHARS:
        raise CalcError(f"The expression is longer than {MAX_CHARS} characters.")
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalcError(f"{expression!r} is not an arithmetic expression.") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalcError("The expression is too long.")
    try:
        return _check(_eval(tree.body))
    except ZeroDivisionError:
        raise CalcError("Division by zero.") from None
    except OverflowError:
        raise CalcError("The result is too large.") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CalcError):
            raise
        raise CalcError(f"That cannot be computed ({exc}).") from None


def format_number(value: Number) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


def _check(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalcError("Only numbers can be computed.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalcError("The result is too large.")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("The result is not a finite number.")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalcError(f"Exponents are limited to ±{MAX_EXPONENT:,}.")
    # An integer power has about bits(base) * exponent bits: refuse before computing it.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise CalcError("The result is too large.")
    result = base**exponent
    if isinstance(result, complex):
        raise CalcError("The result is not a real number.")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalcError("Only numbers are allowed.")
        return _check(node.value)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check(_power(left, right))
        op = _BINARY.get(type(node.op))
        if op is None:
            raise CalcError("Only + - * / // % and ** are allowed.")
        if (
            isinstance(node.op, ast.Mult)
            and isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
        ):
            raise CalcError("The result is too large.")
        return _check(op(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise CalcError("Only + and - signs are allowed.")
        return _check(unary(_eval(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalcError(f"Unknown name {node.id!r}; only pi, e and tau are known.")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            called = ast.unparse(node.func)[:60]
            raise CalcError(
                f"{called!r} is not allowed; the functions are: "
                + ", ".join(sorted(_FUNCTIONS))
                + "."
            )
        if node.keywords:
            raise CalcError("Functions take plain arguments only.")
        args = [_eval(a) for a in node.args]
        if not args or len(args) > 5:
            raise CalcError(f"{node.func.id} takes 1 to 5 arguments.")
        return _check(_FUNCTIONS[node.func.id](*args))
    raise CalcError(f"{type(node).__name__} is not allowed in an arithmetic expression.")
