"""numpy arrays travel as ``.npy`` Blobs (format ``npy``); numpy is imported only when used.

Declare ``numpy.ndarray`` (or ``numpy.typing.NDArray[...]``) as a task input or output; no
import from here is needed. :class:`NumpyArrayTransformer` is exported for flytekit parity.
"""

from __future__ import annotations

from caddis.core._transformers._blobs import NumpyArrayTransformer

__all__ = ["NumpyArrayTransformer"]
