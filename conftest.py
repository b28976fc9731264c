"""Root conftest: thin. Pins the CPU numerics before torch loads, then registers the suite's plugin.

(The options come from fixtures/entry.py through the package's pytest11 entry point.)
"""

import compress  # noqa: F401  (importing compress pins the CPU kernel dispatch: compress/runtime/numerics.py)

pytest_plugins = ["fixtures.plugin"]
