"""deploys/logs.py: which logs each host has, and the merge of every host's lines in time order."""

import shlex

from deploys.djangoapp.settings.placement import plan_fleet
from deploys.djangoapp.operate.logs import RecentLogs, merged, sort_key, units
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, settings


def placed(**overrides):
    found_settings = settings(**overrides)
    fleet, found = plan_fleet({"app": (set(), found_settings)})
    assert found == [], found
    found_settings._fleet, found_settings._host = fleet, "app"
    return found_settings


def test_each_kind_of_log_has_its_units():
    site = placed(celery=True, celery_beat=True, app_server="gunicorn")
    assert units(site, None) == ["gunicorn-mysite", "celery-mysite", "celery-beat-mysite", "nginx"]
    assert units(site, "beat") == ["celery-beat-mysite"] and units(site, "app") == ["gunicorn-mysite"]
    assert site.site_error_log == "/var/log/nginx/mysite.error.log"


def test_the_journal_and_the_error_log_are_read_with_quoted_values():
    command = RecentLogs().command(units=["uwsgi-mysite"], error_log="/var/log/nginx/mysite.error.log",
                                   since="1 hour ago", lines=50)
    journal, tail = command.split("; ")[:2]
    assert shlex.split(journal)[:7] == ["journalctl", "-u", "uwsgi-mysite", "--since", "1 hour ago", "-n", "50"]
    assert "tail -n 50 /var/log/nginx/mysite.error.log" in tail


def test_lines_of_every_host_and_format_merge_in_time_order_filtered_and_masked():
    by_host = {
        "web2": ["2026-11-25T10:00:03.000001+0000 web2 uwsgi[12]: GET /?token=s3cret-token-1",
                 "error.log: 2026/11/25 10:00:01 [error] 7#7: upstream timed out"],
        "web1": ["2026-11-25T10:00:02.500000+0000 web1 uwsgi[11]: GET /",
                 "error.log: [Wed Nov 25 10:00:04.000000 2026] [proxy:error] AH01114: failed"],
    }
    lines = merged(by_host, None, {"TOKEN": "s3cret-token-1"})
    assert [line.split(":", 1)[0] for line in lines] == ["web2", "web1", "web2", "web1"]
    assert "s3cret-token-1" not in "\n".join(lines) and "token=***" in lines[2]
    assert merged(by_host, "UPSTREAM", {}) == [f"web2: {by_host['web2'][1]}"]
    assert sort_key(by_host["web1"][1]) == "2026-11-25T10:00:04"


def test_control_characters_the_app_wrote_reach_the_terminal_as_visible_text():
    """A request path or an exception is the app's text: an escape sequence in it (here: clear
    the screen, retitle the window, an 8-bit CSI) is shown, not obeyed; tabs stay; masking and
    the filter see the visible text."""
    line = "2026-11-25T10:00:02.500000+0000 web1 uwsgi[11]: GET /\x1b[2J\x1b]0;owned\x07\tx\x7f\x9b1m s3cret\x00"
    assert merged({"web1": [line]}, "\\x1b[2j", {"TOKEN": "s3cret"}) == [
        "web1: 2026-11-25T10:00:02.500000+0000 web1 uwsgi[11]: GET /\\x1b[2J\\x1b]0;owned\\x07\tx\\x7f\\x9b1m ***\\x00"]
    assert merged({"web1": ["key \x1bs3cret"]}, None, {"TOKEN": "\x1bs3cret"}) == ["web1: key ***"]


def test_the_options_are_checked():
    for data, variable in [({"since": "$(reboot)"}, "since"), ({"lines": 0}, "lines"), ({"grep": "a\nb"}, "grep"),
                           ({"unit": "postgres"}, "unit")]:
        _, found = problems({**VALID, **data})
        assert len(found) == 1 and found[0].startswith(f"{variable}: "), found
