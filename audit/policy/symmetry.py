"""Request values a pack cannot tell apart, so that one pycasbin decision stands for many requests.

``policy lint`` decides every request of a declared domain, ``prove`` every request
an invariant selects: tens of thousands of requests, each evaluated by pycasbin
against every row until one matches. Most of those requests differ only in values
the pack never names: two data categories that both belong to ``sensitive`` and
appear in no ``p`` row are decided alike, row for row.

The argument, made exact. Call a permutation ``π`` of strings an *automorphism* of an
enforcer when it fixes every string of every ``p`` row, every string constant of the
matcher and the empty string, and maps the links of each role function the matcher
calls onto themselves. If the matcher pycasbin evaluates is built only from

- the request and policy field names (``r_sub``, ``p_obj``),
- string constants, ``==`` and ``!=`` between those, ``True``/``False``,
- calls of role functions ``g…`` with two such arguments, backed by pycasbin's plain
  ``RoleManager`` (no pattern or domain matching functions, no conditional links),
- ``and``, ``or``, ``not`` of the above,

then every step of ``enforce_ex`` on ``π(request)`` is ``π`` of the same step on
``request``: equalities keep their truth (``π`` is a bijection), ``has_link`` is
reachability within a depth bound over links ``π`` preserves, constants and ``p``
fields are fixed, so each row matches or not alike, the effect sees the same
``p_eft`` values and the same row explains the decision. Errors too are alike.

:func:`interchangeable` checks those preconditions on the enforcer itself (the
parsed matcher pycasbin evaluates, its role managers, its rows) and returns ``None``
when any fails. Otherwise it groups the candidate values into classes whose every
transposition is an automorphism (checked link by link); all permutations within
classes are then automorphisms. :meth:`ValueClasses.canonical` maps a request to
one fixed member of its orbit. :class:`SymmetricDecisions` asks pycasbin once per
canonical request; a canonical request that fails is asked again as the request
itself, so an error names the request it always named.

It decides nothing itself: every answer is pycasbin's (:mod:`audit.policy.pack`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import casbin
from casbin.core_enforcer import CoreEnforcer
from casbin.rbac.default_role_manager import RoleManager
from casbin.util import has_eval

__all__ = ["SymmetricDecisions", "ValueClasses", "interchangeable"]

MAX_MATCHER_NODES = 1000
"""A matcher with more nodes than this is not analysed (the shortcut is simply not taken)."""

_T = TypeVar("_T")
_R = TypeVar("_R", bound=tuple[str, ...])
_Link = tuple[str, str]


@dataclass(frozen=True)
class _Shape:
    """What the argument needs from an enforcer whose matcher passed the checks."""

    constants: frozenset[str]
    roles: frozenset[str]
    """Role functions the matcher calls."""


class _MatcherShape:
    """Walks the parsed matcher without recursion; ``None`` from :meth:`run` for anything outside the grammar."""

    def __init__(self, names: frozenset[str], roles: frozenset[str]) -> None:
        self.names = names
        self.roles = roles
        self.constants: set[str] = set()
        self.called: set[str] = set()

    def run(self, tree: ast.AST) -> _Shape | None:
        queue: list[tuple[ast.AST, bool]] = [(tree, True)]
        seen = 0
        while queue:
            node, boolean = queue.pop()
            seen += 1
            if seen > MAX_MATCHER_NODES:
                return None
            children = self.boolean(node) if boolean else self.term(node)
            if children is None:
                return None
            queue.extend(children)
        return _Shape(frozenset(self.constants), frozenset(self.called))

    def boolean(self, node: ast.AST) -> list[tuple[ast.AST, bool]] | None:
        """Children of a node whose value is a truth value, or ``None`` if it is none of the allowed ones."""
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And | ast.Or):
            return [(value, True) for value in node.values]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return [(node.operand, True)]
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return []
        if isinstance(node, ast.Compare) and all(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            return [(operand, False) for operand in (node.left, *node.comparators)]
        if isinstance(node, ast.Call):
            return self.role_call(node)
        return None

    def role_call(self, node: ast.Call) -> list[tuple[ast.AST, bool]] | None:
        """The two arguments of a role function call ``g(a, b)``, else ``None``."""
        if not isinstance(node.func, ast.Name) or node.func.id not in self.roles:
            return None
        if len(node.args) != 2 or node.keywords:
            return None
        self.called.add(node.func.id)
        return [(arg, False) for arg in node.args]

    def term(self, node: ast.AST) -> list[tuple[ast.AST, bool]] | None:
        """A field name or a string constant (no children), else ``None``."""
        if isinstance(node, ast.Name) and node.id in self.names:
            return []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.constants.add(node.value)
            return []
        return None


def _shape(enforcer: Any) -> _Shape | None:
    """The matcher's constants and role functions, if the enforcer meets every precondition of the argument."""
    if type(enforcer) is not casbin.Enforcer or not enforcer.enabled or enforcer.cond_rm_map:
        return None
    parsed = _parsed_matcher(enforcer.model)
    if parsed is None:
        return None
    tree, names, roles = parsed
    shape = _MatcherShape(names, roles).run(tree)
    if shape is None or (shape.roles and not enforcer.rm_map):
        return None
    managers = [getattr(enforcer.model["g"][role], "rm", None) for role in shape.roles]
    return shape if all(_plain(manager) for manager in managers) else None


def _parsed_matcher(model: Any) -> tuple[ast.AST, frozenset[str], frozenset[str]] | None:
    """The tree ``enforce_ex`` evaluates, the field names and the role functions; ``None`` if there is none."""
    try:
        matcher = model["m"]["m"].value
        names = frozenset([*model["r"]["r"].tokens, *model["p"]["p"].tokens])
        roles = frozenset(model["g"].keys()) if "g" in set(model.keys()) else frozenset()
    except (KeyError, AttributeError, TypeError):
        return None
    if not isinstance(matcher, str) or has_eval(matcher):
        return None
    try:
        tree = CoreEnforcer._get_expression(matcher).ast_parsed_value  # pycasbin's own rewriting and parse
    except Exception:  # the matcher does not parse: enforce_ex fails alike on every request
        return None
    return None if tree is None else (tree, names, roles)


def _plain(manager: Any) -> bool:
    """pycasbin's default role manager, with no pattern or domain matching function."""
    return type(manager) is RoleManager and manager.matching_func is None and manager.domain_matching_func is None


def _links(manager: RoleManager) -> set[_Link]:
    """Every link ``has_link`` follows: the role manager's own graph, as it holds it."""
    return {(role.name, parent.name) for role in manager.all_roles.values() for parent in role.roles}


class ValueClasses:
    """Values grouped so that any permutation within groups is an automorphism of the enforcer."""

    def __init__(self, classes: Sequence[Sequence[str]]) -> None:
        self.classes: tuple[tuple[str, ...], ...] = tuple(tuple(group) for group in classes)
        """Each class, its members in the order the candidates were given; only classes of two or more values."""
        self._of = {value: index for index, group in enumerate(self.classes) for value in group}

    def canonical(self, request: _R) -> _R:
        """The request's values renamed within their classes: per class, the first distinct value seen becomes the
        class's first member, the second its second, and so on (a permutation within classes)."""
        of = self._of
        renamed: dict[str, str] = {}
        used: dict[int, int] = {}
        out: list[str] = []
        for value in request:
            index = of.get(value)
            if index is None:
                out.append(value)
                continue
            image = renamed.get(value)
            if image is None:
                count = used.get(index, 0)
                image = renamed[value] = self.classes[index][count]
                used[index] = count + 1
            out.append(image)
        return cast(_R, tuple(out))


def interchangeable(enforcer: Any, values: Iterable[str]) -> ValueClasses | None:
    """Classes of interchangeable ``values`` for this pycasbin enforcer, or ``None`` when the argument does not apply.

    The caller holds :data:`audit.policy.pack.CASBIN_LOCK` where other threads may evaluate.
    """
    shape = _shape(enforcer)
    if shape is None:
        return None
    fixed = set(shape.constants) | {""}
    for row in enforcer.model["p"]["p"].policy:
        fixed.update(row)
    links = {role: _links(enforcer.model["g"][role].rm) for role in sorted(shape.roles)}
    candidates = [value for value in dict.fromkeys(values) if isinstance(value, str) and value not in fixed]
    return ValueClasses(tuple(group for group in _classes(candidates, links) if len(group) > 1))


def _classes(candidates: Sequence[str], links: Mapping[str, set[_Link]]) -> list[list[str]]:
    """Candidates with the same links to everything else, each checked to swap with its class's first member."""
    touching: dict[str, list[tuple[str, _Link]]] = {}
    for role, pairs in links.items():
        for pair in pairs:
            for end in set(pair):
                touching.setdefault(end, []).append((role, pair))
    buckets: dict[frozenset[tuple[str, int, str]], list[list[str]]] = {}
    for value in candidates:
        signature = frozenset(
            (role, side, pair[1 - side])
            for role, pair in touching.get(value, ())
            for side in (0, 1)
            if pair[side] == value
        )
        groups = buckets.setdefault(signature, [])
        for group in groups:
            if _swaps(group[0], value, links, touching):
                group.append(value)
                break
        else:
            groups.append([value])
    return [group for groups in buckets.values() for group in groups]


def _swaps(
    one: str, other: str, links: Mapping[str, set[_Link]], touching: Mapping[str, list[tuple[str, _Link]]]
) -> bool:
    """Whether exchanging ``one`` and ``other`` maps every role function's links onto themselves.

    Only links touching either value move; the exchange is a bijection, so it maps the
    finite set of links onto itself exactly when it maps each moved link into it.
    """

    def swapped(value: str) -> str:
        return other if value == one else one if value == other else value

    for role, pair in (*touching.get(one, ()), *touching.get(other, ())):
        if (swapped(pair[0]), swapped(pair[1])) not in links[role]:
            return False
    return True


class SymmetricDecisions(Generic[_R, _T]):
    """Answers for requests, asking ``ask`` once per canonical request (or per request without classes)."""

    def __init__(self, classes: ValueClasses | None, ask: Callable[[_R], _T]) -> None:
        self.classes = classes
        self.ask = ask
        self.answers: dict[_R, _T] = {}
        self.asked = 0

    def __call__(self, request: _R) -> _T:
        if self.classes is None:
            self.asked += 1
            return self.ask(request)
        key = self.classes.canonical(request)
        found = self.answers.get(key, _MISSING)
        if found is not _MISSING:
            return cast(_T, found)
        self.asked += 1
        try:
            answer = self.ask(key)
        except Exception:  # pycasbin's own error for this request, named as it always was
            return self.ask(request)
        self.answers[key] = answer
        return answer


_MISSING: Any = object()
