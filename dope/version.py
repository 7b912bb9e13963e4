"""The version of the package (pyproject.toml says the same: tests/test_package.py)."""
__version__ = "2.0.0"
