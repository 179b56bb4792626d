"""MUTATION.md from a mutation run (scripts/mutation.sh): the share of mutants the unit tests
killed in each module mutated, every mutant that survived, with its change and, where one is
recorded in tests/mutation-equivalent.txt, why no test can kill it, and the functions no unit
test reaches."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT = REPO / "tests" / "mutation-equivalent.txt"
# A mutant's name: the module, then x_<function> or xǁ<Class>ǁ<method>, then __mutmut_<n>.
NAME = re.compile(r"^(?P<module>[\w.]+?)\.x(?:_|ǁ)\S*__mutmut_\d+$")
KILLED = ("killed", "timeout")


def parse_results(text: str) -> dict[str, str]:
    """mutant name -> status, from `mutmut results --all true`."""
    found = {}
    for line in text.splitlines():
        name, _, status = line.strip().partition(": ")
        if NAME.match(name):
            found[name] = status.strip()
    return found


def module_of(name: str) -> str:
    return NAME.match(name)["module"]


def equivalents(text: str) -> dict[str, str]:
    """mutant name -> why it cannot be killed: lines `<name>: <reason>`; '#' starts a comment."""
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, reason = line.partition(": ")
            found[name.strip()] = reason.strip()
    return found


def score_table(statuses: dict[str, str], explained: dict[str, str]) -> list[str]:
    """Rows of the table: per module, mutants, killed, explained, share killed or explained."""
    by_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in statuses.items():
        counts = by_module[module_of(name)]
        counts["all"] += 1
        counts["killed"] += status in KILLED
        counts["explained"] += status not in KILLED and name in explained
    rows = ["| Module | Mutants | Killed | Equivalent | Score |", "|---|---:|---:|---:|---:|"]
    total = Counter()
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        rows.append(_row(module, counts))
    rows.append(_row("**all**", total))
    return rows


def _row(label: str, counts: Counter) -> str:
    share = (counts["killed"] + counts["explained"]) / counts["all"] * 100 if counts["all"] else 0.0
    return f"| {label} | {counts['all']} | {counts['killed']} | {counts['explained']} | {share:.1f} % |"


def function_of(name: str) -> str:
    """The function (or Class.method) a mutant changes."""
    return re.sub(r"__mutmut_\d+$", "", name.replace("ǁ", ".").replace(".x.", ".").replace(".x_", "."))


def report(statuses: dict[str, str], explained: dict[str, str], diffs: dict[str, str], seconds: int) -> str:
    survived = sorted(name for name, status in statuses.items() if status not in KILLED and status != "no tests")
    untested = Counter(function_of(name) for name, status in statuses.items() if status == "no tests")
    lines = [
        "# Mutation testing",
        "",
        f"Made by `bash scripts/mutation.sh` on {datetime.now(timezone.utc):%Y-%m-%d} in {seconds // 60} min "
        f"{seconds % 60} s: mutmut (setup.cfg says which",
        "modules) against the unit tests. A mutant is killed when a test fails with it (or runs out of",
        "time); the score counts those, and those explained as equivalent (tests/mutation-equivalent.txt:",
        "the change makes no difference a test could see). A function no unit test reaches (an",
        "operation pyinfra runs on a host, the e2e tests' part) has all its mutants counted as not killed.",
        "",
        *score_table(statuses, explained),
        "",
        f"## Survived ({len(survived)})",
        "",
    ]
    for name in survived:
        reason = explained.get(name)
        lines.append(f"### `{name}` ({statuses[name]}{'; equivalent: ' + reason if reason else ''})")
        lines += ["", "```diff", diffs.get(name, "").strip(), "```", ""]
    lines += [f"## No unit test reaches them ({sum(untested.values())} mutants)", "",
              "| Function | Mutants |", "|---|---:|"]
    lines += [f"| `{function}` | {count} |" for function, count in sorted(untested.items())]
    return "\n".join(lines) + "\n"


def changed_lines(diff: str) -> str:
    """The removed and added lines of a mutant's diff."""
    return "\n".join(line for line in diff.splitlines()
                     if line.startswith(("-", "+")) and not line.startswith(("---", "+++")))


def main(seconds: int) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # in .venv: the mutation run's own reading

    results = subprocess.run([str(REPO / ".venv" / "bin" / "mutmut"), "results", "--all", "true"],
                             capture_output=True, text=True, cwd=REPO, check=True).stdout
    statuses = parse_results(results)
    diffs = {name: changed_lines(get_diff_for_mutant(name))
             for name, status in statuses.items() if status not in KILLED and status != "no tests"}
    explained = equivalents(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    return report(statuses, explained, diffs, seconds)


if __name__ == "__main__":
    sys.stdout.write(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
