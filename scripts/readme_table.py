"""Rewrite the variable table of README.md from the settings model and the comments of
group_data/all.py (run after adding a variable; tests/unit/test_documented_defaults.py checks it)."""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploys.djangoapp.settings import REQUIRED, Settings  # noqa: E402


def table() -> str:
    comments = {}
    for line in (REPO / "group_data" / "all.py").read_text().splitlines():
        match = re.match(r"^(\w+) = .*?  # (.*)$", line)
        if match:
            comments[match.group(1)] = match.group(2).replace("REQUIRED. ", "").replace("|", "/")
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "required" if name in REQUIRED else f"`{field.default!r}`"
        rows.append(f"| `{name}` | {default} | {comments[name]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    readme = (REPO / "README.md").read_text()
    start = readme.index("| variable | default | meaning |")
    end = readme.index("\n\n", start)
    (REPO / "README.md").write_text(readme[:start] + table() + readme[end:])
