"""Decks: HTML pages a task renders about its run (flytekit's ``Deck``), minimal for now."""

from __future__ import annotations

import html as _html

__all__ = ["Deck"]


class Deck:
    """A named HTML page attached to a task attempt.

    Creating a deck registers it with the running task's ``current_context().decks``; the
    runtime writes the decks of an attempt next to its outputs.

    Attributes:
        name: Tab name of the deck.
        html: The page body so far.
    """

    def __init__(self, name: str, html: str = "") -> None:
        from caddis.core.context import current_context

        self.name = name
        self._html = html
        current_context().decks.append(self)

    @property
    def html(self) -> str:
        """The page body."""
        return self._html

    def append(self, html: str) -> Deck:
        """Add HTML to the page; returns the deck."""
        self._html += html
        return self

    def append_text(self, text: str) -> Deck:
        """Add escaped text as a paragraph."""
        return self.append(f"<p>{_html.escape(text)}</p>")
