"""The package's version: one place, read by the package root, the profiles' User-Agent and pyproject.toml."""

__version__ = "0.1.0"
