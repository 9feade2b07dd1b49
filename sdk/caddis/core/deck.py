"""Decks: HTML pages a task renders about its run (flytekit's ``Deck``).

The implementation lives with the task runtime (:mod:`caddis.runtime.deck`), which renders
an attempt's decks into ``deck.html`` beside its outputs; this name delegates to it.
"""

from __future__ import annotations

from caddis.runtime.deck import Deck

__all__ = ["Deck"]
