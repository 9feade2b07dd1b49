"""``python -m caddis.runtime``: see :mod:`caddis.runtime.entrypoint`."""

import sys

from caddis.runtime.entrypoint import main

if __name__ == "__main__":
    sys.exit(main())
