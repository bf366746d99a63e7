"""Fixtures of the catalog tests (from ``property_fixtures``)."""

from helpers.property_fixtures import one_thread  # noqa: F401  (pytest finds the fixtures here)
