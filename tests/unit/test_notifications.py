"""The notice a webhook gets, and how it is sent: to a receiver on the loopback."""

import json

from deploys.djangoapp.notifications import notice, post
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
