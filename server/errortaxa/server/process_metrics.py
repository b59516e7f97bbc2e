"""The standard ``process_*`` metrics of this process, read from /proc (Linux; elsewhere there are none)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

PROC = Path("/proc")


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_lines(proc: Path = PROC) -> list[str]:
    """Prometheus text lines: process_cpu_seconds_total, process_resident_memory_bytes,
    process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds;
    none where /proc/self cannot be read."""
    try:
        stat = (proc / "self" / "stat").read_text()
        open_fds = len(os.listdir(proc / "self" / "fd"))
        boot = _boot_time(proc)
    except (OSError, ValueError):
        return []
    # the fields after "(comm)", numbered as in proc(5): 3 = state, 14 utime, 15 stime, 22 starttime, ...
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    value = {
        "cpu_seconds_total": (int(fields[11]) + int(fields[12])) / ticks,
        "virtual_memory_bytes": int(fields[20]),
        "resident_memory_bytes": int(fields[21]) * os.sysconf("SC_PAGE_SIZE"),
        "start_time_seconds": boot + int(fields[19]) / ticks,
        "open_fds": open_fds,
        "max_fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
    lines: list[str] = []
    for name, kind, what in (
        ("cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
        ("virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
        ("resident_memory_bytes", "gauge", "Resident memory size in bytes."),
        ("start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
        ("open_fds", "gauge", "Number of open file descriptors."),
        ("max_fds", "gauge", "Maximum number of open file descriptors."),
    ):
        number = value[name]
        if name == "max_fds" and number == resource.RLIM_INFINITY:
            continue  # no limit
        text = repr(float(number)) if isinstance(number, float) else str(number)
        lines += [f"# HELP process_{name} {what}", f"# TYPE process_{name} {kind}", f"process_{name} {text}"]
    return lines
