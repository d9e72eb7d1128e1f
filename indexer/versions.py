"""Versioned directories with an atomically swapped ``current`` symlink."""

from __future__ import annotations

import os
import shutil
import time

CURRENT = "current"


def new_version_name(prefix: str) -> str:
    """A name that sorts by creation time: ``prefix-YYYYmmdd-HHMMSS-nanos``."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}"


def current_version(root: str) -> str | None:
    try:
        return os.readlink(os.path.join(root, CURRENT))
    except FileNotFoundError:
        return None


def make_current(root: str, name: str) -> None:
    """Point ``root/current`` at ``name`` with one atomic rename."""
    link = os.path.join(root, CURRENT)
    temporary = f"{link}.{os.getpid()}.tmp"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(name, temporary)
    os.replace(temporary, link)


def prune(root: str, prefix: str, keep: int) -> None:
    """Remove all but the newest ``keep`` versions; never the current one."""
    current = current_version(root)
    versions = sorted(e for e in os.listdir(root) if e.startswith(prefix + "-"))
    for stale in versions[: max(0, len(versions) - keep)]:
        if stale != current:
            shutil.rmtree(os.path.join(root, stale), ignore_errors=True)
