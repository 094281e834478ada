"""Wall time of the CLI's fast paths: `resonate --help`, `resonate promises --help` and a shell
completion request, against a bare `python -c pass` measured in the same run.

    python benchmarks/cli_startup.py                  # 20 runs of each
    python benchmarks/cli_startup.py --runs 50 --json
    python benchmarks/cli_startup.py --budget-ms 300  # exit 1 when a median is over budget

cli.md asks for help and completion to stay fast (under 300 ms here): the CLI must not import
the server, the store drivers, Textual, httpx or pydantic on these paths
(`tests/cli/test_import_hygiene.py` guards the imports; this measures the result).

Each run is a fresh process of the `resonate` script installed next to this interpreter (or
`python -m resonate` without one), with stdout to a pipe, as a shell's completion function
reads it. The commands are run round robin, one run of each in turn, so that a burst of load on
the machine weighs on all of them alike. One unmeasured run of each first warms the OS caches
and writes the bytecode. Times are wall clock from spawn to exit; the median is the figure to
compare, the max shows the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def resonate_command() -> list[str]:
    script = Path(sys.executable).with_name("resonate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "resonate"]


def cases() -> list[Case]:
    resonate = resonate_command()
    completion = {
        "_RESONATE_COMPLETE": "complete_bash",
        "COMP_WORDS": "resonate prom",
        "COMP_CWORD": "1",
    }
    return [
        Case("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        Case("resonate --help", [*resonate, "--help"]),
        Case("resonate promises --help", [*resonate, "promises", "--help"]),
        Case("completion of 'resonate prom'", resonate, completion),
    ]


def run_once(case: Case) -> float:
    """Seconds from spawn to exit; the run must succeed."""
    env = {**os.environ, "COLUMNS": "80", **case.env}
    started = time.perf_counter()
    completed = subprocess.run(
        case.argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(
            f"{case.name} exited with {completed.returncode}:\n{completed.stderr.decode()}"
        )
    return elapsed


def measure(runs: int) -> dict[str, list[float]]:
    all_cases = cases()
    for case in all_cases:
        run_once(case)  # warm-up, not counted
    times: dict[str, list[float]] = {case.name: [] for case in all_cases}
    for _ in range(runs):
        for case in all_cases:
            times[case.name].append(run_once(case))
    return times


def summary(times: dict[str, list[float]]) -> list[dict[str, float | str]]:
    baseline = statistics.median(next(iter(times.values())))
    rows: list[dict[str, float | str]] = []
    for name, samples in times.items():
        median = statistics.median(samples)
        rows.append(
            {
                "case": name,
                "runs": len(samples),
                "median_ms": round(median * 1000, 1),
                "max_ms": round(max(samples) * 1000, 1),
                "min_ms": round(min(samples) * 1000, 1),
                "over_baseline_ms": round((median - baseline) * 1000, 1),
            }
        )
    return rows


def print_table(rows: list[dict[str, float | str]]) -> None:
    header = f"{'':34} {'median':>9} {'max':>9} {'min':>9} {'- baseline':>11}"
    print(header)
    for row in rows:
        print(
            f"{row['case']!s:34} {row['median_ms']:>7} ms {row['max_ms']:>6} ms "
            f"{row['min_ms']:>6} ms {row['over_baseline_ms']:>8} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each (20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="exit 1 when the median of a resonate command exceeds this many ms",
    )
    arguments = parser.parse_args()
    rows = summary(measure(max(1, arguments.runs)))
    if arguments.json:
        print(json.dumps({"python": sys.version.split()[0], "results": rows}, indent=2))
    else:
        print(f"{arguments.runs} runs each, {' '.join(resonate_command())}")
        print_table(rows)
    if arguments.budget_ms is not None:
        over = [row for row in rows[1:] if float(row["median_ms"]) > arguments.budget_ms]
        if over:
            names = ", ".join(str(row["case"]) for row in over)
            print(f"over the {arguments.budget_ms:g} ms budget: {names}", file=sys.stderr)
            raise SystemExit(1)


if __name__ == "__main__":
    main()
