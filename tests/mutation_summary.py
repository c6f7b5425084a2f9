"""Summarise a ``make mutate`` run: the survival rate per module and the surviving mutants.

Reads the result files mutmut leaves beside each mutated module
(``mutants/<module>.py.meta``), so it also reports a run the time bound cut
short (mutants not yet tried are counted apart). ``mutmut show <name>``
prints the change a survivor made.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): what each says of a mutant.
_STATUS_BY_EXIT_CODE = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
_TIMEOUT_CODES = {36, -24, -9, 24, 152}


def status_of(exit_code: int | None) -> str:
    if exit_code is None:
        return "not tried"
    if exit_code in _TIMEOUT_CODES:
        return "timeout"  # a mutant that makes the tests hang is caught
    return _STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


def summarise(mutants_dir: Path) -> int:
    totals: Counter[str] = Counter()
    survivors: list[str] = []
    print(f"{'module':44} {'tried':>6} {'killed':>7} {'survived':>9} {'no tests':>9}")
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = Counter(status_of(code) for code in codes.values())
        tried = sum(n for status, n in counts.items() if status != "not tried")
        killed = counts["killed"] + counts["timeout"]
        module = meta.relative_to(mutants_dir).as_posix().removesuffix(".meta")
        print(f"{module:44} {tried:6} {killed:7} {counts['survived']:9} {counts['no tests']:9}")
        totals.update(counts)
        survivors += sorted(k for k, code in codes.items() if status_of(code) == "survived")
    judged = totals["killed"] + totals["timeout"] + totals["survived"]
    if judged == 0:
        print("no mutant was tried: run `make mutate` first")
        return 1
    rate = 100.0 * totals["survived"] / judged
    print(
        f"\n{judged} mutants judged: {totals['killed'] + totals['timeout']} killed "
        f"({totals['timeout']} by timeout), {totals['survived']} survived = {rate:.1f}% survival; "
        f"{totals['no tests']} on lines no test runs, {totals['not tried']} not tried yet, "
        f"{totals['suspicious']} suspicious"
    )
    print("\nsurvivors (`mutmut show NAME` prints the change):")
    for name in survivors:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(summarise(Path(sys.argv[1] if len(sys.argv) > 1 else "mutants")))
