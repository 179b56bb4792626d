"""The notice a webhook gets, and how it is sent: to a receiver on the loopback, from the control
machine (a run's notice) and from a host (bin/notify)."""

import json
import subprocess
import sys

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.services.notifications import notice, post
from deploys.djangoapp.settings import problems
from tests.receiver import Receiver
from tests.unit.sites import VALID, settings


def test_the_notice_says_what_happened_and_carries_no_secret():
    site = settings(django_environment_variables={"DJANGO_SECRET_KEY": "s3cret-value-0123456789"})
    facts = notice(site, action="release", outcome="released", release_id="r2", previous_id="r1",
                   revision="abc123", duration=12.34)
    assert {key: facts[key] for key in ("project", "action", "outcome", "release", "previous", "revision", "hosts",
                                        "duration_seconds")} == {
        "project": "mysite", "action": "release", "outcome": "released", "release": "r2", "previous": "r1",
        "revision": "abc123", "hosts": ["localhost"], "duration_seconds": 12.3}
    assert "@" in facts["operator"]
    assert facts["text"].startswith("mysite (mysite.example.com): released r2 (was r1) by ")
    assert "s3cret-value" not in json.dumps(facts)
    failed = notice(site, action="rollback", outcome="failed", release_id="r1", previous_id="r2", revision=None,
                    duration=1)
    assert "rollback of r1 failed; r2 still live" in failed["text"]


def test_each_webhook_gets_the_json_and_a_failing_one_is_named_by_its_host_only():
    receiver, refusing = Receiver(), Receiver(status=500)
    try:
        errors = post([f"{receiver.url}/hooks/T0KEN", f"{refusing.url}/hooks/OTHER", "http://127.0.0.1:1/hooks/GONE"],
                      {"text": "hello"})
    finally:
        receiver.close()
        refusing.close()
    assert receiver.received == [("/hooks/T0KEN", "application/json", {"text": "hello"})]
    assert errors == ["webhook at 127.0.0.1 answered 500", "webhook at 127.0.0.1 unreachable: ConnectionRefusedError"]


def test_webhooks_are_checked_without_showing_them():
    found = problems({**VALID, "deploy_notify_url": ["https://hooks.example.com/T0KEN", "ftp://x/T0KEN2"]})[1]
    assert found == ["deploy_notify_url: entry 2 is not an http:// or https:// URL"]
    assert settings(deploy_notify_url="https://hooks.example.com/x").deploy_notify_url == ["https://hooks.example.com/x"]


def test_the_hosts_own_notices_reach_each_webhook_as_json_and_never_fail_the_caller(tmp_path):
    """bin/notify, run as the backup and the certificate recorder run it: every listed webhook gets
    the JSON (any detail, quotes and newlines included), one that fails is named by its host alone,
    and the program ends well either way; without the webhooks file it sends nothing."""
    webhooks = tmp_path / "notify-webhooks"
    program = tmp_path / "notify"
    program.write_text(render_template("notifications/notify.py.j2", s=settings(), webhooks=str(webhooks)))
    detail = 'certbot: Failed to renew "mysite"\nwith error: 14000 $HOME `x`'

    def run(*words):
        return subprocess.run([sys.executable, str(program), *words], capture_output=True, text=True, timeout=60)

    nothing = run("backup", "failed", "failed (exit 3)")
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "")
    receiver = Receiver()
    try:
        webhooks.write_text(f"{receiver.url}/hooks/T0KEN\nhttp://user:pa55@127.0.0.1:1/hooks/GONE\n")
        sent = run("certificate renewal", "failed", detail)
    finally:
        receiver.close()
    assert sent.returncode == 0
    [(path, kind, body)] = receiver.received
    assert (path, kind) == ("/hooks/T0KEN", "application/json")
    assert {key: body[key] for key in ("project", "url", "action", "outcome", "detail")} == {
        "project": "mysite", "url": "mysite.example.com", "action": "certificate renewal", "outcome": "failed",
        "detail": detail}
    assert body["text"] == f"mysite (mysite.example.com): certificate renewal failed on {body['host']}: {detail}"
    assert sent.stderr == "notification not delivered: webhook at 127.0.0.1\n"  # no path, no credentials
