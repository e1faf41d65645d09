"""``$name`` templates: how a finding is worded, checked once against the names it may use, filled by name.

A pack rule's ``message`` (and a residency rule's ``copy_message``) in ``rules.yaml``
is a template in :class:`string.Template` syntax, and so are the engines' own
messages and texts:

* ``$name`` or ``${name}`` is replaced by the value of ``name`` (a name is an ASCII
  letter or ``_`` followed by letters, digits and ``_``; ``$who.`` names ``who``);
* ``$$`` is one ``$``;
* any other ``$`` is refused: a lone ``$``, ``$5``, ``${name`` or ``${ name }``
  (write ``$$`` for a dollar sign);
* a name the template's scope does not fill is refused (replay and residency fill
  different names; their binders pass theirs in);
* a template that can fill to blank text is refused: one with no text but blanks
  besides names whose value may be empty (``$approval`` without an approval). A
  finding's message is never empty.

A template is never evaluated: a placeholder is a name looked up in a mapping (no
attribute, index or format specification), values are inserted as they are (a ``{``
or ``$`` in a value is text), and a template is at most :data:`MAX_TEMPLATE_CHARS`
characters long. Refusals are :class:`TemplateError` with the reason only: the caller
knows the file and line (:meth:`audit.policy.config.PackRule.template`).

Engine texts (titles, descriptions, remediations) say ``$home`` where a pack's home
jurisdiction goes: :func:`fill_home`. This module checks and fills; which names exist
and their values are the engines' (:mod:`audit.replay.rules._bind`,
:mod:`audit.residency.rules._bind`). It reads no file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from string import Template

MAX_TEMPLATE_CHARS = 1000
"""The longest template accepted (``rules.yaml`` allows 500 characters per message)."""

HOME = "home"
"""The only name engine texts (titles, descriptions, remediations) use."""


class TemplateError(ValueError):
    """A template that cannot be used; the message is the reason, without the file and line."""


@dataclass(frozen=True)
class TemplateScope:
    """What the templates of one rule scope (``replay``, ``residency``) may use, as its binder says.

    ``policy lint`` checks a pack's ``rules.yaml`` with it before anything is bound.
    """

    names: frozenset[str]
    """The names a template may use."""
    may_be_empty: frozenset[str]
    """The names whose value is empty for some findings."""
    kinds: frozenset[str]
    """The engine rules a pack rule of this scope may be reported by."""


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _excerpt(text: str, start: int) -> str:
    return repr(text[start : start + 12])


class PackTemplate:
    """A ``$name`` template, checked against the names it may use and compiled once to a format string."""

    __slots__ = ("_format", "names", "text")

    def __init__(self, text: str, known: Collection[str], may_be_empty: Collection[str] = ()) -> None:
        if len(text) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"longer than {MAX_TEMPLATE_CHARS} characters")
        parts: list[str] = []
        names: list[str] = []
        end = 0
        for match in Template.pattern.finditer(text):
            parts.append(_literal(text[end : match.start()]))
            end = match.end()
            if match.group("escaped") is not None:
                parts.append("$")
                continue
            name = match.group("named") or match.group("braced")
            if name is None:
                where = f"at character {match.start() + 1}: {_excerpt(text, match.start())}"
                raise TemplateError(f"a $ must start $name, ${{name}} or $$ (for a dollar sign), {where}")
            if name not in known:
                raise TemplateError(f"unknown placeholder ${name} (known: {', '.join(sorted(known))})")
            names.append(name)
            parts.append("{" + name + "}")
        parts.append(_literal(text[end:]))
        if all(name in may_be_empty for name in names) and not _text_besides_names(text):
            said = ", ".join(f"${name}" for name in dict.fromkeys(names)) or "nothing"
            raise TemplateError(f"can fill to blank text (it says {said}): add words or a name that always has a value")
        self.text = text
        self.names: tuple[str, ...] = tuple(dict.fromkeys(names))
        """The names the template uses, each once, in order of first use."""
        self._format = "".join(parts)

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value (``values`` must hold every name used)."""
        return self._format.format_map(values)

    def __repr__(self) -> str:
        return f"PackTemplate({self.text!r})"


def _text_besides_names(text: str) -> bool:
    """Whether ``text`` says anything but blanks outside its placeholders (``$$`` is a ``$``)."""
    return bool(Template.pattern.sub(lambda m: "$" if m.group("escaped") is not None else "", text).strip())


def fill_home(text: str, home: str) -> str:
    """An engine text with ``$home`` replaced by the pack's home name (the only name engine texts use)."""
    if "$" not in text:
        return text
    return PackTemplate(text, (HOME,)).fill({HOME: home})
