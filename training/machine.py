"""A one-line description of the machine, for reports that quote timings."""

from __future__ import annotations

import os
import platform


def machine_description() -> str:
    """The CPU model, core count and system, e.g. 'AMD EPYC, 2 cores, Linux'."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"
