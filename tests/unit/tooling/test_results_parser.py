"""The e2e tests' reading of pyinfra's results table (tests/conftest.py): "nothing changed" is only
ever read from a table that was found."""

import pytest

from tests.conftest import PyinfraRun, parse_results

OUTPUT = """--> Beginning operation run...
--> Results:
    Operation                                        Hosts   Success   Error   No Change
    App skeleton | Take the deploy lock              2       2         -       -
    App skeleton | Write the app's environment       2       1         -       1
    App skeleton | Reload nginx                      2       -         -       2
    App skeleton | Take the db host lock             1       1         -       -
    App skeleton | Release the deploy lock           2       2         -       -
    Grand total                                      9       6         -       3
"""


def test_the_results_table_is_read_and_the_locks_do_not_count_as_changes():
    run = PyinfraRun(0, OUTPUT, parse_results(OUTPUT))
    assert run.results["App skeleton | Reload nginx"] == {"Hosts": "2", "Success": "-", "Error": "-",
                                                          "No Change": "2"}
    assert run.changed() == ["App skeleton | Write the app's environment"]
    assert run.changed("Release") == []


@pytest.mark.parametrize("output", ["", OUTPUT.replace("Operation ", "Step ").replace("Grand total", "All")])
def test_without_a_table_it_can_read_nothing_counts_as_unchanged(output):
    with pytest.raises(AssertionError, match="no results table"):
        PyinfraRun(1, output, parse_results(output)).changed()
