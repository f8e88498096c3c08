"""Saved-reply templates: ``{{ contact.first_name | default("there") }}`` and nothing more.

Jinja2 parses the text (its sandboxed environment renders it); the parse tree is then checked
against a whitelist, so a template can only print the known placeholders, optionally with a quoted
fallback, and literal text. No blocks (``{% if %}``, ``{% for %}``), no other filters, no method
calls: a saved reply is text an agent sends, not a program. Pure functions, no IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from services.inbox.errors import InvalidTemplate

PLACEHOLDERS: dict[str, str] = {
    "contact.name": "the contact's name (or the name their platform shows)",
    "contact.first_name": "the first word of the contact's name",
    "agent.name": "the name of the agent using the reply",
    "agent.first_name": "the first word of the agent's name",
    "conversation.id": "the conversation's id",
    "conversation.title": "the conversation's title (a group's or thread's name)",
    "channel.name": "the name of the channel the conversation is on",
    "workspace.name": "the workspace's name",
}
"""Every placeholder a saved reply may use, with what it stands for."""

FALLBACK_FILTER = "default"
_UNKNOWN = "unknown placeholder"

# A placeholder without a value is undefined: it renders as nothing, or as its fallback.
_environment = SandboxedEnvironment(
    autoescape=False, keep_trailing_newline=True, undefined=ChainableUndefined
)


@dataclass(frozen=True)
class Use:
    """One placeholder in a template, with its fallback if it gives one."""

    name: str
    fallback: str | None


@dataclass(frozen=True)
class Rendered:
    """A template filled in: the text, and which placeholders it used, lacked, or fell back on."""

    text: str
    used: list[str]
    missing: list[str]
    """Used without a value and without a fallback: rendered as nothing."""
    defaulted: list[str]
    """Used without a value: their fallback was rendered."""


@dataclass(frozen=True)
class ReplyTemplate:
    """A checked template, ready to render."""

    source: str
    uses: tuple[Use, ...]
    compiled: Template

    @property
    def placeholders(self) -> list[str]:
        """The placeholders used, each once, in order of first use."""
        return list(dict.fromkeys(use.name for use in self.uses))

    def render(self, values: Mapping[str, str | None]) -> Rendered:
        """Fill in ``values`` (by placeholder name; None or empty means no value)."""
        present = {name: value for name, value in values.items() if value}
        context: dict[str, dict[str, str]] = {}
        for name, value in present.items():
            group, attribute = name.split(".", 1)
            context.setdefault(group, {})[attribute] = value
        text = self.compiled.render(context)
        missing = [u.name for u in self.uses if u.name not in present and u.fallback is None]
        defaulted = [u.name for u in self.uses if u.name not in present and u.fallback is not None]
        return Rendered(
            text=text,
            used=self.placeholders,
            missing=list(dict.fromkeys(missing)),
            defaulted=list(dict.fromkeys(defaulted)),
        )


def _dotted(node: nodes.Node) -> str | None:
    """``contact.name`` for the tree of ``contact.name`` (None for anything but names and attributes)."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        parent = _dotted(node.node)
        return f"{parent}.{node.attr}" if parent else None
    return None


def _placeholder(node: nodes.Node, problems: list[dict[str, Any]]) -> str | None:
    name = _dotted(node)
    if name in PLACEHOLDERS:
        return name
    if name is None:
        problems.append(
            {
                "line": node.lineno,
                "message": "only placeholders like {{ contact.first_name }} can be used inside {{ }}",
            }
        )
    else:
        problems.append({"line": node.lineno, "placeholder": name, "message": _UNKNOWN})
    return None


def _check(node: nodes.Node, uses: list[Use], problems: list[dict[str, Any]]) -> None:
    if isinstance(node, nodes.TemplateData):
        return
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return  # literal text, e.g. {{ "{{" }}
    if isinstance(node, nodes.Filter) and node.node is not None:
        name = _placeholder(node.node, problems)
        fallback = node.args[0] if len(node.args) == 1 else None
        if (
            node.name != FALLBACK_FILTER
            or not isinstance(fallback, nodes.Const)
            or not isinstance(fallback.value, str)
            or node.kwargs
            or node.dyn_args
            or node.dyn_kwargs
        ):
            problems.append(
                {
                    "line": node.lineno,
                    **({"placeholder": name} if name else {}),
                    "message": 'the only filter is a fallback in quotes: | default("text")',
                }
            )
        elif name is not None:
            uses.append(Use(name, fallback.value))
        return
    name = _placeholder(node, problems)
    if name is not None:
        uses.append(Use(name, None))


def parse(source: str) -> ReplyTemplate:
    """Check a template; raises InvalidTemplate naming every problem (unknown placeholders, syntax)."""
    try:
        tree = _environment.parse(source)
    except TemplateSyntaxError as exc:
        reason = (exc.message or "syntax error").rstrip(".")
        raise InvalidTemplate(
            f"The text is not a valid template (line {exc.lineno}): {reason}.",
            errors=[{"line": exc.lineno, "message": reason}],
        ) from exc
    uses: list[Use] = []
    problems: list[dict[str, Any]] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            problems.append(
                {
                    "line": statement.lineno,
                    "message": "only {{ placeholders }} are allowed, not {% %} blocks",
                }
            )
            continue
        for node in statement.nodes:
            _check(node, uses, problems)
    if problems:
        unknown = list(dict.fromkeys(p["placeholder"] for p in problems if p["message"] == _UNKNOWN))
        summary = (
            f"Unknown placeholders: {', '.join(unknown)}. "
            if unknown
            else "The text is not a valid template. "
        )
        raise InvalidTemplate(
            f"{summary}Known placeholders: {', '.join(PLACEHOLDERS)}.",
            errors=problems,
        )
    return ReplyTemplate(source, tuple(uses), _environment.from_string(tree))
