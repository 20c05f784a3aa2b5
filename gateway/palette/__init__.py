"""The Spectro Cloud Palette backend: its client, tools, analyses and MCP resources.

Entry points live in ``gateway.palette.tools``: ``open_backend(settings, check=...)`` and
``register_resources(server, read=...)``.
"""
