"""Sentiedge edge node: sentiment inference and personalization next to the user."""

__version__ = "0.1.0"
