"""``FlytePickle``: the marker type of values that caddis pickles (no transformer known)."""

from __future__ import annotations

__all__ = ["FlytePickle"]


class FlytePickle:
    """Declares a value that travels pickled (a ``PythonPickle`` Blob).

    Types without a transformer are pickled automatically (with a ``PickleFallbackWarning``);
    ``guess_python_type`` returns this class for a pickled value's LiteralType.
    """

    @classmethod
    def python_type(cls) -> type:
        """The Python type of pickled values: any object."""
        return object
