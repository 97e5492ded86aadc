"""The release this package is (``deploy --version``, the wheel's version)."""

__version__ = "0.1.0"
