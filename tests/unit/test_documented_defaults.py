"""group_data/all.py and the README's table document every variable with the model's default."""

import ast
import re
from pathlib import Path

from deploys.djangoapp.settings import REQUIRED, VARIABLES, Settings

REPO = Path(__file__).resolve().parents[2]


def group_data_all() -> dict:
    tree = ast.parse((REPO / "group_data" / "all.py").read_text())
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
    }


def readme_table() -> dict:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"^\| `(\w+)` \| (.*?) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_group_data_all_lists_every_variable_in_model_order():
    assert list(group_data_all()) == list(VARIABLES)


def test_group_data_all_holds_the_model_defaults():
    documented = group_data_all()
    for name, field in Settings.model_fields.items():
        expected = None if name in REQUIRED else field.default
        assert documented[name] == expected, name


def test_readme_table_lists_every_variable_with_its_default():
    table = readme_table()
    assert list(table) == list(VARIABLES)
    for name, field in Settings.model_fields.items():
        shown = "required" if name in REQUIRED else f"`{field.default!r}`"
        assert table[name] == shown, name


def test_the_version_is_the_changelog_s_newest_and_every_renamed_variable_is_in_it():
    from deploys.djangoapp.settings import RENAMED

    version = (REPO / "VERSION").read_text().strip()
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert re.findall(r"^## (\S+)", changelog, re.M)[0] == version
    for name in RENAMED:
        assert f"`{name}`" in changelog, name
