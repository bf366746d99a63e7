"""Helpers shared by the test suite: oracles, brute-force references, seed designs, models.

Importable as ``helpers`` because ``pythonpath`` in ``[tool.pytest.ini_options]`` names ``tests``.
"""
