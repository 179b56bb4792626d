"""What the kit reads of a host besides pyinfra's own facts: the releases in its folder (the live
one, the history) and the state of the kit's folders; and the operation that makes those folders."""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import FactBase, operation

from .shell import each_path, q


class ReleaseInfo(FactBase):
    """The metadata (.release.json) of the release a link points at, or None without one."""

    def command(self, link: str) -> str:
        return f"cat {q(link)}/.release.json 2>/dev/null || true"

    def process(self, output):
        text = "\n".join(output).strip()
        return json.loads(text) if text else None


class Releases(FactBase):
    """The release folders on the host, oldest first: id -> "ok", "failed", "rolled-back",
    "unreleased" (complete, but it never went live: a run killed before its switch) or "partial"
    (a build a killed run left behind). The order is the one in which they went live, from the
    history (`history`, release-history's file): a release made again under its id takes its new
    place, and one a rollback went back to keeps its own. Those that never went live come first.
    Without a history (a host of a kit before it), the order in which they were unpacked."""

    default = dict
    HISTORY = "@@history"  # opens the history's lines; no line of the folders' starts so

    def command(self, releases_dir: str, history: str | None = None) -> str:
        folders = (f"(cd {q(releases_dir)} 2>/dev/null && for release in *; do "
                   f"[ -d \"$release\" ] || continue; "
                   f"case \"$release\" in *.partial) echo \"0 $release partial\"; continue;; esac; "
                   f"state=ok; [ -e \"$release/.failed\" ] && state=failed; "
                   f"[ -e \"$release/.rolled-back\" ] && state=rolled-back; "
                   f"echo \"$(stat -c %Y \"$release/.release.json\" 2>/dev/null || echo 0) $release $state\"; "
                   f"done | sort -n -k1,1 -s || true)")
        if history is None:
            return folders
        return f"{folders}; echo {self.HISTORY}; cat {q(history)} 2>/dev/null; true"

    def process(self, output):
        lines = list(output)
        split = lines.index(self.HISTORY) if self.HISTORY in lines else len(lines)
        rows = (line.split() for line in lines[:split] if line.strip())
        folders = {release_id: state for _, release_id, state in rows}
        went_live = released_order(lines[split + 1:])
        if split == len(lines) or not went_live:
            return folders
        never = {release_id: ("unreleased" if state == "ok" else state)
                 for release_id, state in folders.items() if release_id not in went_live}
        return {**never, **{release_id: folders[release_id] for release_id in went_live if release_id in folders}}


def released_order(history: list[str]) -> list[str]:
    """The ids a release made live, in the order of the last time each did, from the history's
    lines. The release a rollback goes back to is recorded live too, right after the one it rolls
    back from is recorded rolled back: that does not move it."""
    order: dict[str, int] = {}
    previous = None
    for number, line in enumerate(history):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("status") == "live" and not (previous or {}).get("status") == "rolled-back":
            order.pop(entry.get("id"), None)
            order[entry.get("id")] = number
        previous = entry
    return [release_id for release_id in order if isinstance(release_id, str)]


class FolderStates(FactBase):
    """Owner, group and mode ("755") of each of `paths` that is a folder (a link to one is
    followed), by path; the others are missing."""

    default = dict

    def command(self, paths: list[str]) -> str:
        return each_path(paths, "[ -d \"$path\" ] && stat -L -c '%U %G %a %n' \"$path\"")

    def process(self, output):
        found = {}
        for line in output:
            user, group, mode, path = line.split(" ", 3)
            found[path] = (user, group, mode)
        return found


@operation()
def folders(layout: list[tuple[str, str, str, str]]):
    """Folders (path, owner, group, mode; a parent before its children), made or set right in
    one command, after one look at all of them: files.directory takes four round trips each."""
    found = host.get_fact(FolderStates, paths=[path for path, *_ in layout])
    wrong = [(path, user, group, mode) for path, user, group, mode in layout
             if found.get(path) != (user, group, mode)]
    if not wrong:
        host.noop(f"{len(layout)} folders as they should be")
        return
    yield folders_command(wrong)


def folders_command(layout: list[tuple[str, str, str, str]]) -> str:
    """Shell: each folder made, or set to its owner, group and mode (install -d does both)."""
    return " && ".join(f"install -d -o {q(user)} -g {q(group)} -m {q(mode)} {q(path)}"
                       for path, user, group, mode in layout)
