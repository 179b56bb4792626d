"""The benchmark's arithmetic and words, and what it reads of a host's /proc (bench/figures.py)."""

import pytest

from bench import figures

STAT = """1 (systemd) S 0 1 1 0 -1 4194560 0
412 (uwsgi) S 1 412 412 0 -1 4194560 0
415 (uwsgi) S 412 412 412 0 -1 4194624 0
416 (uwsgi) S 412 412 412 0 -1 4194624 0
500 (celery) S 1 500 500 0 -1 4194560 0
501 (cel (pool) x) S 500 500 500 0 -1 4194624 0
502 (nginx) S 1 502 502 0 -1 4194560 0
"""

STATUS = """Name:\tuwsgi
VmPeak:\t  231540 kB
VmHWM:\t   61236 kB
VmRSS:\t   60112 kB
"""


def test_the_parent_of_each_process_is_read_after_the_last_parenthesis():
    parents = figures.parent_pids(STAT)
    assert parents[415] == 412 and parents[501] == 500 and parents[1] == 0
    assert len(parents) == 7


def test_a_service_is_its_main_process_and_every_descendant():
    parents = figures.parent_pids(STAT + "600 (child) S 416 1 1 0\n")
    assert figures.process_tree(parents, 412) == [412, 415, 416, 600]
    assert figures.process_tree(parents, 500) == [500, 501]
    assert figures.process_tree(parents, 999) == []


def test_vmhwm_is_the_peak_resident_size_in_kib():
    assert figures.vmhwm_kib(STATUS) == 61236
    with pytest.raises(ValueError):
        figures.vmhwm_kib("Name:\tkthreadd\nVmRSS:\t 10 kB\n")


def test_the_peaks_of_several_processes_are_summed_and_a_vanished_one_not_counted():
    statuses = f"== 412\n{STATUS}== 415\n{STATUS.replace('61236', '1000')}== 416\n"
    assert figures.summed_vmhwm_kib(statuses) == (62236, 2)
    assert figures.memory_figure(62236, 2) == "61 MiB (2 processes)"


def test_summary_gives_the_median_with_min_max_and_count():
    assert figures.summary([3.0, 1.0, 2.0, 10.0]) == "2.5 s (min 1.0, max 10.0, n=4)"


def test_a_ratio_is_of_medians_and_says_whether_the_goal_is_met():
    assert figures.ratio([6.0, 6.2, 9.0], [4.0, 4.1, 3.9]) == pytest.approx(1.55)
    assert figures.goal_words(1.55, 1.5) == "ratio 1.55 (goal at most 1.5: not met)"
    assert figures.goal_words(1.5, 1.5) == "ratio 1.50 (goal at most 1.5: met)"


def test_failures_are_shown_for_pages_and_assets_apart_and_any_one_misses_the_goal():
    assert figures.failures_figure(0, 900, 2, 900, 2, 5) == (
        "pages: 0 failed of 900; assets: 2 failed of 900 (runs=2); sent again on a new connection: 5")
    assert figures.failures_goal(0, 0) == "goal 0: met"
    assert figures.failures_goal(0, 2) == "goal 0: NOT met"
    assert figures.failures_goal(1, 0) == "goal 0: NOT met"


def test_the_phases_of_a_pyinfra_run_last_from_one_progress_line_to_the_next():
    lines = [(0.1, "--> Loading config...\n"), (0.4, "--> Loading inventory...\n"),
             (0.5, "--> Connecting to hosts...\n"), (1.5, "    [web1] Connected\n"),
             (2.0, "--> Preparing operation files...\n"), (5.0, "--> Skipping change detection\n"),
             (6.0, "--> Beginning operation run...\n"), (9.5, "--> Results:\n")]
    assert figures.phase_times(lines, 10.0) == {"start-up": 0.5, "connect": 1.5, "prepare": 4.0, "run": 3.5,
                                                "results": 0.5}
    with pytest.raises(ValueError, match="Beginning operation run"):
        figures.phase_times(lines[:5], 10.0)


def test_what_failed_requests_got_is_listed_most_frequent_first_and_nothing_when_none_failed():
    assert figures.reasons_words({"asset ConnectionResetError": 1, "page 502": 3}) == (
        "; failed with page 502: 3, asset ConnectionResetError: 1")
    assert figures.reasons_words({}) == ""
