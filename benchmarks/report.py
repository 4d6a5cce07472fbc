"""Write benchmark figures into docs/performance.md, one marked section per benchmark."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

PERFORMANCE_MD = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADER = """# Performance

Figures measured on this project's development machine by the scripts in `benchmarks/`
(`make bench` runs them all). Each section says the command that produced it, the machine
and the date; rerunning a benchmark rewrites its own section only. Absolute figures drift on
shared machines: compare ratios measured in one run.
"""


def machine() -> str:
    """Cores and CPU model, e.g. ``2 cores, AMD EPYC 7B13``."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def command() -> str:
    """The command line that is running, relative to the repository."""
    return " ".join(["python", *map(shlex.quote, ["-m", _module(), *sys.argv[1:]])])


def _module() -> str:
    main = Path(sys.argv[0]).resolve()
    return f"benchmarks.{main.stem}"


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/performance.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Command: `{command()}`  \nMachine: {machine()}  \nMeasured: {stamp}\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = PERFORMANCE_MD.read_text() if PERFORMANCE_MD.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    PERFORMANCE_MD.parent.mkdir(parents=True, exist_ok=True)
    PERFORMANCE_MD.write_text(text)
    print(section)


def process_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident memory in KiB of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    return cpu, peak
