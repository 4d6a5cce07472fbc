"""Start-up time of the ``coldchain`` command: ``coldchain --help`` and ``coldchain pki --help``
against ``python -c pass`` (the interpreter alone), measured in one run.

    python -m benchmarks.cli_startup --runs 21

Each round runs the three commands once each, one after another, so that a noisy machine
slows all three alike; the table gives medians, the fastest run and the ratio to the
interpreter's own start. ``coldchain`` is run as ``python -m coldchain``, which imports what
the installed script imports.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Final

from benchmarks.report import write_section

TARGET_S: Final = 0.3  # `coldchain --help` (issue 17)
COMMANDS: Final = {
    "`python -c pass` (the interpreter alone)": [sys.executable, "-c", "pass"],
    "`coldchain --help`": [sys.executable, "-m", "coldchain", "--help"],
    "`coldchain pki --help`": [sys.executable, "-m", "coldchain", "pki", "--help"],
}
# What the command once loaded at start (fpdf for every command) and now leaves to the
# commands that use it.
HEAVY: Final = ("fpdf", "fontTools", "boto3", "pydantic", "rich", "paho", "cryptography", "sqlite3")
MODULES_AFTER: Final = (
    "import sys\nfrom coldchain.apps.cli import main\ntry:\n    main(sys.argv[1:])\n"
    "except SystemExit:\n    pass\nsys.stderr.write(' '.join(sys.modules))\n"
)


def wall(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def loaded(*args: str) -> set[str]:
    """The modules ``coldchain ARGS`` has loaded when it exits."""
    done = subprocess.run(
        [sys.executable, "-c", MODULES_AFTER, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return set(done.stderr.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="Rounds of the three commands.")
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm the file cache and the bytecode
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = next(iter(medians.values()))
    rows = [
        f"| {name} | {1000 * medians[name]:.0f} ms | {1000 * min(times[name]):.0f} ms "
        f"| {medians[name] / baseline:.1f} | {1000 * (medians[name] - baseline):.0f} ms |"
        for name in COMMANDS
    ]
    heavy_lines = []
    for label, command in list(COMMANDS.items())[1:]:
        modules = loaded(*command[3:])  # the arguments after `python -m coldchain`
        tops = {name.split(".")[0] for name in modules}
        found = [name for name in HEAVY if name in tops]
        heavy_lines.append(
            f"- {label} loads {len(modules)} modules; of {', '.join(HEAVY)}: "
            + (", ".join(found) if found else "none")
            + "."
        )
    result = medians["`coldchain --help`"]
    verdict = "met" if result < TARGET_S else "missed"
    body = "\n".join(
        [
            f"Wall time of each command in a fresh process, {args.runs} interleaved rounds "
            "(`python -m coldchain`, as the installed `coldchain` script).",
            "",
            "| command | median | fastest | x `python -c pass` | above the interpreter |",
            "|---|---|---|---|---|",
            *rows,
            "",
            *heavy_lines,
            "",
            f"Target: `coldchain --help` under {TARGET_S:g} s. Result: {1000 * result:.0f} ms "
            f"({verdict}). The root group imports a command's module only when that command "
            "runs (apps/cli/lazy.py); `--help` lists the commands from a table of summaries.",
        ]
    )
    write_section("cli-startup", "CLI start-up", body)


if __name__ == "__main__":
    main()
