"""What a matcher may say, checked before pycasbin evaluates anything; matcher functions on RE2.

pycasbin evaluates a matcher as a Python expression (through ``simpleeval``) after
rewriting it: ``p.sub`` becomes ``p_sub``, comments are cut, ``&&`` becomes
``and``, ``||`` ``or`` and ``!`` ``not``. A pack from an untrusted pull request can
therefore ask for ``9**3999999`` or a catastrophic regular expression and keep CI
busy until it dies. :func:`matcher_problems` applies the same rewriting and parses
the result with :mod:`ast`, then walks the tree without recursion and accepts only:

- the request and policy fields (``r.sub``, ``p.obj``), no other names;
- comparisons, ``and``/``or``/``not``, parentheses, unary minus on numbers;
- string literals of at most 256 characters and numbers of at most 10**9;
- calls of the role functions the model defines (``g``, ``g2``, ...) and of
  ``keyMatch``..``keyMatch5``, ``regexMatch``, ``globMatch``, ``ipMatch``,
  ``timeMatch`` with their number of arguments (``eval(p.field)`` only outside packs);

anything else (``**`` and other arithmetic, attributes, subscripts,
comprehensions, lambdas, f-strings, other calls) is a ``matcher-disallowed``
problem at file:line:column, refused by the loader and reported by lint.

:func:`install_functions` registers, on one enforcer (never globally), versions of
``regexMatch``, ``keyMatch2``..``keyMatch5`` and ``globMatch`` that run on RE2, a
linear-time engine, with bounded arguments. It does not decide requests
(:mod:`audit.policy.pack`).
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import re2
from casbin.util import builtin_operators, escape_assertion, remove_comments

from audit.errors import PolicyError
from audit.policy.diagnostics import quote

__all__ = [
    "FUNCTION_ARITY",
    "MAX_ARGUMENT_CHARS",
    "casbin_expression",
    "compile_regex",
    "disallowed",
    "field_names",
    "install_functions",
]

MAX_MATCHER_CHARS = 8192
MAX_NODES = 1000
MAX_DEPTH = 40
MAX_INT = 10**9
MAX_STRING = 256
MAX_ARGUMENT_CHARS = 4096
"""A matcher function's string argument (request value or row field) is at most this long."""
MAX_GLOB_WILDCARDS = 3

FUNCTION_ARITY: dict[str, tuple[int, ...]] = {
    "keyMatch": (2,),
    "keyMatch2": (2,),
    "keyMatch3": (2,),
    "keyMatch4": (2,),
    "keyMatch5": (2,),
    "regexMatch": (2,),
    "globMatch": (2,),
    "ipMatch": (2,),
    "timeMatch": (2,),
}
"""Built-in matcher functions a matcher may call, with the numbers of arguments they take."""

_ROLE_KEY = re.compile(r"g[0-9]*")
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_LEAVES = (ast.Load, ast.And, ast.Or, ast.Not, ast.USub, *_COMPARISONS)


def casbin_expression(value: str) -> str:
    """The Python expression pycasbin evaluates for a matcher written ``value`` (its own rewriting)."""
    expr = remove_comments(escape_assertion(value))
    expr = expr.replace("&&", "and").replace("||", "or")
    return re.sub(r"!(?!=)", "not ", expr)


class _Walk:
    """Breadth-first check of one parsed matcher; the first disallowed construct wins."""

    def __init__(self, names: frozenset[str], functions: Mapping[str, tuple[int, ...]]) -> None:
        self.names = names
        self.functions = functions

    def run(self, tree: ast.Expression) -> tuple[str, str] | None:
        queue: list[tuple[ast.AST, int]] = [(tree.body, 1)]
        seen = 0
        while queue:
            node, depth = queue.pop()
            seen += 1
            if seen > MAX_NODES or depth > MAX_DEPTH:
                return "is too large or nests too deeply", ""
            problem = self.node(node)
            if problem is not None:
                return problem
            children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
            queue.extend((child, depth + 1) for child in children if not isinstance(child, _LEAVES))
        return None

    def node(self, node: ast.AST) -> tuple[str, str] | None:
        if isinstance(node, ast.BoolOp | ast.Compare):
            return None
        if isinstance(node, ast.UnaryOp):
            number = isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            return None if isinstance(node.op, ast.Not) or number else ("an arithmetic operator", "")
        if isinstance(node, ast.Name):
            shown = re.sub(r"^([rp][0-9]*)_", r"\1.", node.id)
            return None if node.id in self.names else (f"the name {quote(shown)}", shown)
        if isinstance(node, ast.Constant):
            return _constant(node.value)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Tuple | ast.List) and len(node.elts) <= 64:
            return None
        return _construct(node)

    def call(self, node: ast.Call) -> tuple[str, str] | None:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions:
            name = node.func.id if isinstance(node.func, ast.Name) else ""
            return f"a call of {quote(name) if name else 'an expression'}", name
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            return "keyword or starred arguments", node.func.id
        if len(node.args) not in self.functions[node.func.id]:
            wanted = " or ".join(str(n) for n in self.functions[node.func.id])
            return f"{node.func.id}() with {len(node.args)} arguments (it takes {wanted})", node.func.id
        if node.func.id == "eval" and not (isinstance(node.args[0], ast.Name) and node.args[0].id.startswith("p")):
            return "eval() of anything but a policy field", "eval"
        return None


def _constant(value: object) -> tuple[str, str] | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return None if len(value) <= MAX_STRING else (f"a string literal longer than {MAX_STRING} characters", "")
    if isinstance(value, int):
        return None if abs(value) <= MAX_INT else (f"a number beyond {MAX_INT}", str(value)[:20])
    if isinstance(value, float):
        ok = math.isfinite(value) and abs(value) <= MAX_INT
        return None if ok else (f"a number beyond {MAX_INT}", "")
    return f"a {type(value).__name__} literal", ""


_NEEDLES: dict[type[ast.AST], tuple[str, str]] = {
    ast.BinOp: ("an arithmetic operator", ""),
    ast.Attribute: ("attribute access", "."),
    ast.Subscript: ("a subscript", "["),
    ast.Lambda: ("a lambda", "lambda"),
    ast.JoinedStr: ("an f-string", "f"),
    ast.IfExp: ("a conditional expression", "if"),
    ast.NamedExpr: ("an assignment expression", ":="),
}


def _construct(node: ast.AST) -> tuple[str, str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return "the power operator **", "**"
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return "a comprehension", "for"
    for kind, found in _NEEDLES.items():
        if isinstance(node, kind):
            return found
    return f"a {type(node).__name__} expression", ""


def disallowed(
    value: str, *, names: frozenset[str], roles: Mapping[str, int], allow_eval: bool
) -> tuple[str, str] | None:
    """``(what, needle)`` for the first construct of matcher ``value`` outside the allow-list, else ``None``.

    ``names`` are the field names as pycasbin rewrites them (``r_sub``, ``p_obj``);
    ``roles`` gives the number of arguments of each role function the model defines;
    ``needle`` is text to find the construct by in ``value`` (may be empty).
    """
    if len(value) > MAX_MATCHER_CHARS:
        return f"is longer than {MAX_MATCHER_CHARS} characters", ""
    try:
        tree = ast.parse(casbin_expression(value).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        return f"is not an expression pycasbin can evaluate ({reason})", ""
    functions: dict[str, tuple[int, ...]] = {**FUNCTION_ARITY, **{key: (count,) for key, count in roles.items()}}
    if allow_eval:
        functions["eval"] = (1,)
    return _Walk(names, functions).run(tree)


def field_names(definitions: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """``r_sub``, ``p_obj``, ``p2_act``, ...: the names a rewritten matcher may use."""
    return frozenset(f"{key}_{name}" for key, fields in definitions.items() for name in fields)


def role_arity(definitions: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Role function -> its number of arguments, from the model's role definitions."""
    return {key: len(fields) for key, fields in definitions.items() if _ROLE_KEY.fullmatch(key)}


# ---------------------------------------------------------------- matcher functions on RE2


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options


_OPTIONS = _options()


_PYTHON_END = re.compile(r"(?<!\\)((?:\\\\)*)\\Z")


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    # Python's \Z (end of text) is RE2's \z; the rest of the syntax both share.
    return re2.compile(_PYTHON_END.sub(r"\1\\z", pattern), _OPTIONS)


def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2; a ``PolicyError`` when it is too long or RE2 cannot run it."""
    if len(pattern) > MAX_ARGUMENT_CHARS:
        raise PolicyError(f"regular expression is longer than {MAX_ARGUMENT_CHARS} characters: {quote(pattern)}")
    try:
        return _compiled(pattern)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise PolicyError(
            f"regular expression {quote(pattern)} is not accepted by the linear-time engine (RE2): {text}"
        ) from None


def _strings(name: str, args: tuple[Any, ...]) -> tuple[str, str]:
    if len(args) != 2 or not all(isinstance(arg, str) for arg in args):
        raise PolicyError(f"{name} takes two strings")
    for arg in args:
        if len(arg) > MAX_ARGUMENT_CHARS:
            raise PolicyError(f"{name} argument longer than {MAX_ARGUMENT_CHARS} characters: {quote(arg)}")
    return args[0], args[1]


def _regex_match(*args: Any) -> bool:
    key, pattern = _strings("regexMatch", args)
    return compile_regex(pattern).match(key) is not None  # re.match semantics: anchored at the start


def _key_match2(*args: Any) -> bool:
    key, pattern = _strings("keyMatch2", args)
    pattern = builtin_operators.KEY_MATCH2_PATTERN.sub(r"\g<1>[^\/]+\g<2>", pattern.replace("/*", "/.*"), 0)
    return compile_regex("^" + ("(.*)" if pattern == "*" else pattern) + "$").match(key) is not None


def _key_match3(*args: Any) -> bool:
    key, pattern = _strings("keyMatch3", args)
    pattern = builtin_operators.KEY_MATCH3_PATTERN.sub(r"\g<1>[^\/]+\g<2>", pattern.replace("/*", "/.*"), 0)
    return compile_regex("^" + pattern + "$").match(key) is not None


def _key_match4(*args: Any) -> bool:
    key, pattern = _strings("keyMatch4", args)
    tokens: list[str] = []

    def group(match: re.Match[str]) -> str:
        tokens.append(match.group(1))
        return "([^/]+)"

    regex = builtin_operators.KEY_MATCH4_PATTERN.sub(group, pattern.replace("/*", "/.*"))
    found = compile_regex("^" + regex + "$").match(key)
    if found is None:
        return False
    values: dict[str, str] = {}
    return all(values.setdefault(token, value) == value for token, value in zip(tokens, found.groups(), strict=False))


def _key_match5(*args: Any) -> bool:
    key, pattern = _strings("keyMatch5", args)
    key = key.split("?", 1)[0]
    pattern = builtin_operators.KEY_MATCH5_PATTERN.sub(r"[^/]+", pattern.replace("/*", "/.*"), 0)
    return compile_regex("^" + pattern + "$").match(key) is not None


def _glob_match(*args: Any) -> bool:
    string, pattern = _strings("globMatch", args)
    wildcards = sum(pattern.count(char) for char in "*?")
    if wildcards > MAX_GLOB_WILDCARDS or "{" in pattern or len(string) > MAX_STRING:
        raise PolicyError(
            f"globMatch pattern {quote(pattern)} is too complex to match in bounded time (at most "
            f"{MAX_GLOB_WILDCARDS} wildcards, no braces, values up to {MAX_STRING} characters)"
        )
    return bool(builtin_operators.glob_match(string, pattern))


SAFE_FUNCTIONS: dict[str, Callable[..., bool]] = {
    "regexMatch": _regex_match,
    "keyMatch2": _key_match2,
    "keyMatch3": _key_match3,
    "keyMatch4": _key_match4,
    "keyMatch5": _key_match5,
    "globMatch": _glob_match,
}
"""Matcher functions replaced on every enforcer this package builds (the others are linear already)."""


_EXPRESSIONS_KEPT = 256


def _memoised_expressions(compile_expression: Callable[..., Any]) -> Callable[..., Any]:
    """pycasbin's ``_get_expression``, parsing each matcher text once per enforcer instead of once per request.

    pycasbin hands every call the same function map (``FunctionMap.fm``, updated in place
    with the role functions before each request) and the evaluator keeps a reference to
    it, so a kept evaluator sees exactly the functions a new one would; each evaluation
    sets its names afresh. The memo is used only when the map is that same object.
    """
    kept: dict[str, tuple[Any, Any]] = {}

    def get_expression(expr: str, functions: Any = None) -> Any:
        found = kept.get(expr)
        if found is not None and found[0] is functions:
            return found[1]
        expression = compile_expression(expr, functions)
        if len(kept) >= _EXPRESSIONS_KEPT:
            kept.clear()
        kept[expr] = (functions, expression)
        return expression

    return get_expression


def install_functions(enforcer: Any) -> Any:
    """Register the RE2-backed matcher functions on ``enforcer`` (pycasbin ``add_function``); returns it.

    Also memoises the enforcer's parsed matcher (:func:`_memoised_expressions`).
    """
    for name, function in SAFE_FUNCTIONS.items():
        enforcer.add_function(name, function)
    enforcer._get_expression = _memoised_expressions(enforcer._get_expression)
    return enforcer
