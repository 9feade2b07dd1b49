"""Decks: HTML pages a task renders about its run (flytekit's ``Deck``).

``Deck("name", html)`` inside a running task adds a page to the attempt's deck list
(``current_context().decks``); ``deck.append(html)`` adds more. When the task has
``enable_deck=True`` the runtime also adds an automatic page with summaries of the inputs and
outputs, and writes every page into one ``deck.html`` beside the outputs.
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Deck", "render_deck_page", "summary_table"]

_MAX_VALUE_CHARS = 500


class Deck:
    """One named HTML page of a task attempt's deck.

    Creating a deck inside a running task registers it with the attempt, so that the runtime
    renders it into ``deck.html``; outside a task it is a free-standing page.

    Args:
        name: Title of the page (tab name).
        html: Initial HTML body.
        auto_add: Register with the running attempt (default True).

    Attributes:
        name: Title of the page.
    """

    def __init__(self, name: str, html: str | None = "", *, auto_add: bool = True) -> None:
        self.name = name
        self._html = html or ""
        if auto_add:
            from caddis.core.context import current_context

            current_context().decks.append(self)

    def append(self, html: str) -> Deck:
        """Append HTML to the page; returns the deck for chaining."""
        self._html += html
        return self

    def append_text(self, text: str) -> Deck:
        """Append escaped text as a paragraph; returns the deck."""
        return self.append(f"<p>{_html.escape(text)}</p>")

    @property
    def html(self) -> str:
        """The page's HTML body."""
        return self._html

    def __repr__(self) -> str:
        return f"Deck({self.name!r}, {len(self._html)} chars)"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not fail the task
        text = f"<{type(value).__name__}>"
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def summary_table(title: str, values: Mapping[str, Any]) -> str:
    """An HTML table of ``name | type | value`` rows (values shortened)."""
    rows = "".join(
        f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(type(v).__name__)}</td>"
        f"<td><pre>{_html.escape(_short(v))}</pre></td></tr>"
        for k, v in values.items()
    )
    return (
        f"<h3>{_html.escape(title)}</h3><table><tr><th>name</th><th>type</th><th>value</th></tr>"
        f"{rows}</table>"
    )


def render_deck_page(task_name: str, decks: Iterable[Deck]) -> str:
    """One self-contained HTML document holding every deck of an attempt."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{_html.escape(task_name)}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "section{margin-bottom:2em}</style></head><body>",
        f"<h1>{_html.escape(task_name)}</h1>",
    ]
    for deck in decks:
        parts.append(f"<section><h2>{_html.escape(deck.name)}</h2>{deck.html}</section>")
    parts.append("</body></html>")
    return "".join(parts)
