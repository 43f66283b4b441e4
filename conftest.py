"""Root conftest: registers bmsrig's pytest plugin even without an installed entry point."""

pytest_plugins = ["fixtures.plugin"]
