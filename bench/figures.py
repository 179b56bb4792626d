"""The arithmetic and the words of the benchmark table, and what it reads of a host's /proc:
pure functions, tested in tests/unit/tooling/test_bench_figures.py."""

from __future__ import annotations

import re
import statistics


def summary(values: list[float]) -> str:
    """Median of the runs in seconds, with min, max and their number."""
    return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def ratio(values: list[float], baseline: list[float]) -> float:
    """Median against the baseline's median."""
    return statistics.median(values) / statistics.median(baseline)


def goal_words(value: float, goal: float) -> str:
    """The ratio and whether it meets a goal of "at most `goal`"."""
    return f"ratio {value:.2f} (goal at most {goal}: {'met' if value <= goal else 'not met'})"


def failures_figure(pages_failed: int, pages: int, assets_failed: int, assets: int, runs: int, retried: int) -> str:
    """Failed pages and failed assets apart, summed over the runs of one scenario, and the requests
    sent again because the server closed a kept-alive connection unanswered (as a browser does)."""
    return (f"pages: {pages_failed} failed of {pages}; assets: {assets_failed} failed of {assets} (runs={runs}); "
            f"sent again on a new connection: {retried}")


def failures_goal(pages_failed: int, assets_failed: int) -> str:
    return "goal 0: met" if pages_failed == 0 and assets_failed == 0 else "goal 0: NOT met"


def reasons_words(reasons: dict[str, int]) -> str:
    """What the failed requests got ("page 502: 3"), most frequent first; nothing when none failed."""
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return "; failed with " + ", ".join(f"{reason}: {count}" for reason, count in ordered) if reasons else ""


# ------------------------------------------------------------------ memory, from a host's /proc

def parent_pids(stat_text: str) -> dict[int, int]:
    """pid -> parent pid, from the concatenated /proc/<pid>/stat lines of a host. The command name
    (field 2, in parentheses) may hold spaces and parentheses: the fields after it are read from
    the last ')'."""
    parents = {}
    for line in stat_text.splitlines():
        head, _, tail = line.rpartition(")")
        if not head or "(" not in head:
            continue
        fields = tail.split()
        pid = head.split("(", 1)[0].strip()
        if pid.isdigit() and len(fields) >= 2 and fields[1].isdigit():
            parents[int(pid)] = int(fields[1])
    return parents


def process_tree(parents: dict[int, int], root: int) -> list[int]:
    """`root` and all its descendants (the master of an app server and its workers), sorted."""
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sorted(tree) if root in parents else []


_VMHWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB$", re.MULTILINE)


def vmhwm_kib(status_text: str) -> int:
    """The peak resident set size (VmHWM) of one /proc/<pid>/status, in KiB."""
    found = _VMHWM.search(status_text)
    if not found:
        raise ValueError("no VmHWM line in this /proc/<pid>/status")
    return int(found.group(1))


def summed_vmhwm_kib(statuses: str) -> tuple[int, int]:
    """(sum of VmHWM in KiB, processes counted) of /proc/<pid>/status texts, each headed by a
    line "== <pid>"; a process gone before it was read (no VmHWM) is not counted."""
    total = count = 0
    for block in re.split(r"^== \d+$", statuses, flags=re.MULTILINE)[1:]:
        try:
            total += vmhwm_kib(block)
        except ValueError:
            continue
        count += 1
    return total, count


def memory_figure(kib: int, processes: int) -> str:
    return f"{kib / 1024:.0f} MiB ({processes} processes)"


# ------------------------------------------------------------------ where a pyinfra run's time goes

# pyinfra's progress lines, each the start of a phase (pyinfra_cli/cli.py).
PHASES = [("start-up", None), ("connect", "--> Connecting to hosts"), ("prepare", "--> Preparing operation"),
          ("run", "--> Beginning operation run"), ("results", "--> Results")]


def phase_times(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Seconds spent in each phase of a pyinfra run, from (seconds since start, line) of its
    output: a phase lasts from its progress line to the next one's (the last one to `wall`)."""
    starts = {"start-up": 0.0}
    for name, marker in PHASES[1:]:
        seen = next((at for at, line in lines if marker in line), None)
        if seen is None:
            raise ValueError(f"pyinfra's output has no line {marker!r}")
        starts[name] = seen
    names = [name for name, _ in PHASES]
    ends = [starts[name] for name in names[1:]] + [wall]
    return {name: round(end - starts[name], 3) for name, end in zip(names, ends)}
