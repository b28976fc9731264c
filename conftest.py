"""Root conftest: thin. Pins the CPU numerics before torch loads, then registers the suite's plugins."""

import compress  # noqa: F401  (importing compress pins the CPU kernel dispatch: compress/numerics.py)

pytest_plugins = ["fixtures.worlds", "fixtures.plugin"]
