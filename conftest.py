"""Root conftest: thin. Registers the suite's pytest plugins (options, fixtures, hooks live there)."""

pytest_plugins = ["fixtures.worlds", "fixtures.plugin"]
