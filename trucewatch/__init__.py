"""trucewatch: a streaming monitor for Arabic news on ceasefire diplomacy."""

__version__ = "0.1.0"
