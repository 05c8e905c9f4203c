"""Importers: turn another platform's configuration into a graticule platform.yaml."""
