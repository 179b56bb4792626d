"""The steps the skeleton adds for what serves the site, recorded without a host
(tests/unit/steps.py): the webserver's site written only once its test accepts it, then reloaded
when an input changed; on a load balancer, HAProxy's config the same way, and nothing of the app."""

from __future__ import annotations

import pytest

from deploys.djangoapp.core import context
from deploys.djangoapp.settings import DeployRefused
from deploys.djangoapp.site import load_balancer, skeleton, webserver
from deploys.djangoapp.site.load_balancer import ConfigProject
from tests.unit.site.test_haproxy_config import placed
from tests.unit.sites import settings
from tests.unit.steps import Steps


@pytest.fixture
def steps(monkeypatch) -> Steps:
    recorded = Steps(monkeypatch)
    recorded.replace(webserver, "install_tested_config", "template")
    recorded.replace(context, "host_files")
    recorded.replace(skeleton, "files", "systemd", "refresh_service", "apache_enabled", "template", "folders",
                     "hold_lock", "let_go", "finish_host_prep", "load_balancer")
    recorded.replace(skeleton.audit, "record")
    monkeypatch.setattr(skeleton.audit, "changed_anything", lambda: (lambda: True))
    monkeypatch.setattr(skeleton, "webserver_reload_command", lambda settings, reload: reload)
    recorded.replace(load_balancer, "folders", "refresh_service", "acme_certificate", "no_acme_certificate")
    return recorded


def test_nginx_s_site_is_installed_if_nginx_accepts_it_then_reloaded_on_change(steps):
    skeleton._nginx(settings(), ["/etc/nginx/ssl/mysite.crt"])
    installed = steps.of("install_tested_config")
    assert [step.kwargs for step in installed] == [{
        "name": "Install /etc/nginx/sites-available/mysite.conf if the webserver accepts it",
        "staged": "/etc/django-deploy/staged/etc_nginx_sites-available_mysite.conf",
        "dest": "/etc/nginx/sites-available/mysite.conf", "test_command": "/usr/sbin/nginx -t -q"}]
    reload, = steps.of("refresh_service")
    assert reload.kwargs["inputs"] == ["/etc/nginx/sites-available/mysite.conf", "/etc/nginx/sites-enabled",
                                       "/etc/nginx/ssl/mysite.crt"]
    assert reload.kwargs["command"] == "/usr/sbin/nginx -t -q && systemctl reload nginx"


def test_apache_s_site_is_installed_if_apache_accepts_it(steps):
    skeleton._apache(settings(webserver="apache2"), [])
    installed, = steps.of("install_tested_config")
    assert installed.kwargs["dest"] == "/etc/apache2/sites-available/mysite.conf"
    assert installed.kwargs["test_command"] == "apache2ctl -t"


def test_a_load_balancer_gets_its_folder_the_lock_haproxy_and_nothing_of_the_app(steps):
    lb1 = placed()["lb1"]
    skeleton._load_balancer_host(lb1)
    assert steps.calls() == [("folders", "Folders of /srv/www/mysite"), ("hold_lock", ""),
                             ("finish_host_prep", ""), ("load_balancer", ""), ("record", ""), ("let_go", "")]


def test_haproxy_s_config_is_installed_if_haproxy_accepts_it_then_reloaded(steps, monkeypatch):
    lb1 = placed()["lb1"]
    steps.host(load_balancer, "lb1", {ConfigProject: None})
    monkeypatch.setattr(load_balancer, "site_certificate", lambda site: [site.ssl_certificate_path, site.ssl_key_path])
    load_balancer.load_balancer(lb1)
    installed, = steps.of("install_tested_config")
    assert installed.kwargs == {"name": "Install /etc/haproxy/haproxy.cfg if HAProxy accepts it",
                                "staged": "/etc/django-deploy/staged/etc_haproxy_haproxy.cfg",
                                "dest": "/etc/haproxy/haproxy.cfg",
                                "test_command": "haproxy -c -q -f /etc/haproxy/haproxy.cfg"}
    reload, = steps.of("refresh_service")
    assert reload.kwargs["inputs"] == ["/etc/haproxy/haproxy.cfg", "/etc/haproxy/ssl/mysite.pem",
                                       "/etc/haproxy/ssl/mysite.pem.key"]
    assert reload.kwargs["command"] == "haproxy -c -q -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy"
    assert steps.calls()[-1] == ("no_acme_certificate", "")  # none asked for: none left behind


def test_with_acme_the_load_balancer_asks_for_its_certificate_once_haproxy_passes_the_challenges_on(steps, monkeypatch):
    lb1 = placed(acme_email="ops@example.com")["lb1"]
    steps.host(load_balancer, "lb1", {ConfigProject: "mysite"})
    monkeypatch.setattr(load_balancer, "site_certificate", lambda site: [site.ssl_certificate_path, site.ssl_key_path])
    load_balancer.load_balancer(lb1)
    assert [step.operation for step in steps][-2:] == ["refresh_service", "acme_certificate"]
    asked = steps.of("acme_certificate")[0]
    assert asked.kwargs["reload_command"] == load_balancer.haproxy_reload(lb1) == (
        "if systemctl is-active -q haproxy; then haproxy -c -q -f /etc/haproxy/haproxy.cfg && systemctl reload "
        "haproxy && mkdir -p /var/lib/django-deploy/refreshed && touch /var/lib/django-deploy/refreshed/haproxy; fi")


def test_a_load_balancer_of_another_project_is_refused(steps):
    steps.host(load_balancer, "lb1", {ConfigProject: "otherbook"})
    with pytest.raises(DeployRefused, match="this load balancer serves project otherbook"):
        load_balancer.load_balancer(placed()["lb1"])
    assert list(steps) == []
