"""How much memory a configuration may take: refuse up front what cannot fit, with the figures.

A size argument (a vocabulary, a sentence length, a buffer, a network) that asks for more memory
than the machine has ends, without this check, in a ``MemoryError`` traceback or in the kernel
killing the process. Code that is about to allocate estimates what it needs and calls
:func:`check_fits`, which compares it with :func:`available_memory_bytes`.

The limit is the memory the system reports as available (``MemAvailable`` in ``/proc/meminfo``),
lowered to what a cgroup (a container, a batch job) still allows, with ``sysconf`` as the fallback
where ``/proc`` does not exist. ``NLP_ENVS_MEMORY_LIMIT`` (bytes, or with a suffix ``K``, ``M``,
``G``, ``T``: ``NLP_ENVS_MEMORY_LIMIT=8G``) replaces the measured figure, e.g. to keep a share
of the machine free or to allow a configuration that swaps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["LIMIT_VARIABLE", "ResourceLimitError", "available_memory_bytes", "check_fits", "format_bytes"]

LIMIT_VARIABLE = "NLP_ENVS_MEMORY_LIMIT"
"""Environment variable: the memory limit in bytes (suffixes K, M, G, T), read at each check."""

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ResourceLimitError(ValueError):
    """A configuration needs more memory than the limit; the message has both figures."""


def format_bytes(count: float) -> str:
    """``count`` bytes in the largest binary unit that keeps it >= 1 (``"10.0 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _limit_from_variable() -> int | None:
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(
            f"{LIMIT_VARIABLE}={text!r} is not a size; give bytes or a number with K, M, G or T (e.g. 8G)."
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """What the cgroup of this process still allows (v2 ``memory.max``, v1 ``limit_in_bytes``), if limited."""
    for limit_file, usage_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        try:
            limit_text = limit_file.read_text().strip()
            if limit_text == "max":
                return None
            limit, usage = int(limit_text), int(usage_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # cgroup v1 writes a huge number for "no limit"
            return None
        return max(limit - usage, 0)
    return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def available_memory_bytes() -> int | None:
    """The memory a new allocation may take now, in bytes; None where the platform does not say.

    ``NLP_ENVS_MEMORY_LIMIT`` when set; else ``MemAvailable`` (or ``sysconf`` free pages), lowered to
    the cgroup's remaining allowance where one is set.

    Raises:
        ValueError: ``NLP_ENVS_MEMORY_LIMIT`` is set but is not a size.
    """
    configured = _limit_from_variable()
    if configured is not None:
        return configured
    figures = [figure for figure in (_meminfo_available() or _sysconf_available(), _cgroup_available()) if figure]
    return min(figures) if figures else None


def check_fits(what: str, needed_bytes: float) -> None:
    """Refuse ``what`` if it needs more than :func:`available_memory_bytes`.

    Args:
        what: names the configuration and the arguments that drive the size, e.g.
            ``"nlp_envs/NextWord-v0 with vocab_size=50000 (bigram tables of 50,001 x 50,000)"``.
        needed_bytes: the estimated peak memory it needs.

    Raises:
        ResourceLimitError: it cannot fit; the message gives the estimate, the limit, where the limit
            comes from, and how to proceed.
    """
    limit = available_memory_bytes()
    if limit is None or needed_bytes <= limit:
        return
    source = LIMIT_VARIABLE if os.environ.get(LIMIT_VARIABLE, "").strip() else "available memory"
    raise ResourceLimitError(
        f"{what} needs about {format_bytes(needed_bytes)} of memory, more than the {format_bytes(limit)} "
        f"limit ({source}); choose smaller sizes, or set {LIMIT_VARIABLE} (e.g. {LIMIT_VARIABLE}=64G) "
        "if you know it fits."
    )
