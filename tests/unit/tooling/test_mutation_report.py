"""MUTATION.md is made from what mutmut says (scripts/mutation_report.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from mutation_report import changed_lines, equivalents, parse_results, report  # noqa: E402

RESULTS = """
    deploys.djangoapp.release.switch.x_link_command__mutmut_1: killed
    deploys.djangoapp.release.switch.x_link_command__mutmut_2: survived
    deploys.djangoapp.release.switch.x_web_check__mutmut_1: timeout
    deploys.djangoapp.settings.project.xǁProjectSettingsǁ_safe__mutmut_3: no tests
    deploys.djangoapp.settings.project.xǁProjectSettingsǁ_safe__mutmut_4: killed
"""


def test_the_score_counts_killed_timed_out_and_explained_mutants_by_module():
    statuses = parse_results(RESULTS)
    assert statuses["deploys.djangoapp.settings.project.xǁProjectSettingsǁ_safe__mutmut_3"] == "no tests"
    explained = equivalents("# why\ndeploys.djangoapp.release.switch.x_link_command__mutmut_2: same command  # note\n")
    assert explained == {"deploys.djangoapp.release.switch.x_link_command__mutmut_2": "same command"}
    text = report(statuses, explained, {"deploys.djangoapp.release.switch.x_link_command__mutmut_2":
                                        "-    return a\n+    return b"}, 75)
    assert "+    return b" in text
    assert "| deploys.djangoapp.release.switch | 3 | 2 | 1 | 100.0 % |" in text
    assert "| deploys.djangoapp.settings.project | 2 | 1 | 0 | 50.0 % |" in text
    assert "| **all** | 5 | 3 | 1 | 80.0 % |" in text
    assert "## Survived (1)" in text and "in 1 min 15 s" in text
    assert "(survived; equivalent: same command)" in text
    assert "| `deploys.djangoapp.settings.project.ProjectSettings._safe` | 1 |" in text


def test_the_change_of_a_mutant_is_its_removed_and_added_lines():
    shown = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n def f():\n-    return 1\n+    return 2\n"
    assert changed_lines(shown) == "-    return 1\n+    return 2"
