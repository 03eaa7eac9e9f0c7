"""Vedika: a self-hostable AI answer engine."""

__version__ = "0.1.0"
