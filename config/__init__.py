"""Shipped analyst-editable knowledge and configuration (YAML files; a package so installs carry them)."""
