"""A load generator with an HTML report: ``python -m bench.load``.

Drives a Headwater server (started as a child process, or ``--url``) with the load app in
``app/convex`` through the official Python client: paced queries, inserts, text and vector
searches from client threads, and subscribers holding the newest messages. Prints a
summary per operation and writes a self-contained HTML report with latency charts.
"""

from __future__ import annotations

from bench.load.cli import main
from bench.load.settings import Settings, SettingsError, parse_settings

__all__ = ["Settings", "SettingsError", "main", "parse_settings"]
