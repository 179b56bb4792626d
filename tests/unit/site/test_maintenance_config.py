"""Maintenance mode's webserver configs, page and commands, rendered and run here."""

import json
import re
import subprocess

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.site.maintenance import maintenance_page_content, migrating_commands
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, settings


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def test_nginx_serves_the_page_with_503_unless_allowed_exempt_or_off():
    site = settings(maintenance_allow=["203.0.113.7", "2001:db8::/32"], health_check_path="/health/?full=1")
    config = render_template("nginx/site.conf.j2", s=site)
    geo = re.search(r"geo \$mysite_maintenance_allowed \{(.*?)\}", config, re.S).group(1)
    assert {"127.0.0.0/8 1;", "::1 1;", "203.0.113.7/32 1;", "2001:db8::/32 1;"} <= {line.strip() for line in geo.splitlines()}
    exempt = re.search(r"map \$uri \$mysite_maintenance_exempt \{(.*?)\}", config, re.S).group(1)
    assert '"/health/" 1;' in exempt and "~^/static/ 1;" in exempt
    https = config[config.index("listen 443"):]
    assert "if (-f /srv/www/mysite/maintenance/on)" in https and "if (-f /srv/www/mysite/maintenance/migrating)" in https
    assert ('set $mysite_maintenance "${mysite_maintenance}${mysite_maintenance_allowed}'
            '${mysite_maintenance_exempt}";') in https
    assert 'if ($mysite_maintenance = "on00") {\n        return 503;' in https
    assert "error_page 503 @mysite_maintenance;" in https
    page = re.search(r"location @mysite_maintenance \{(.*?)\}", https, re.S).group(1)
    assert "root /srv/www/mysite/maintenance;" in page and "rewrite ^ /page.html break;" in page
    assert "add_header Retry-After 300 always;" in page and "Strict-Transport-Security" in page
    # Plain HTTP only redirects: no maintenance there to get in the way of ACME.
    assert "maintenance" not in config[config.index("listen 80;"):config.index("listen 443")]


def test_apache_serves_the_page_with_503_unless_allowed_exempt_or_off():
    site = settings(webserver="apache2", maintenance_allow=["10.1.0.0/16"], health_check_path="/health/")
    config = render_template("apache2/site.conf.j2", s=site)
    rules = config[config.index("RewriteEngine On"):config.index("RewriteRule ^ - [R=503,L]")]
    assert "RewriteCond %{REQUEST_URI} !=/.maintenance.html" in rules
    assert "RewriteCond %{REQUEST_URI} !^/static/" in rules and "RewriteCond %{REQUEST_URI} !=/health/" in rules
    assert "RewriteCond expr \"!(-R '127.0.0.0/8' || -R '::1' || -R '10.1.0.0/16')\"" in rules
    assert rules.rstrip().endswith("RewriteCond /srv/www/mysite/maintenance/on -f [OR]\n"
                                   "    RewriteCond /srv/www/mysite/maintenance/migrating -f")
    assert "ErrorDocument 503 /.maintenance.html" in config
    assert 'Header always set Retry-After "300"' in config
    # The page is Apache's, never the app's.
    assert config.index("ProxyPass /.maintenance.html !") < config.index("ProxyPass / ")
    assert "RewriteEngine" not in config[:config.index("<VirtualHost *:443>")]


def test_the_page_is_the_projects_own_or_a_plain_one(tmp_path):
    assert "mysite.example.com is being updated" in maintenance_page_content(settings())
    own = tmp_path / "page.html"
    own.write_text("<h1>Back at noon</h1>")
    assert maintenance_page_content(settings(maintenance_page=str(own))) == "<h1>Back at noon</h1>"
    assert maintenance_page_content(settings(maintenance_page="<p>inline</p>")) == "<p>inline</p>"


def test_maintenance_settings_are_checked(tmp_path):
    def found(**overrides):
        return problems({**VALID, **overrides})[1]

    assert found(maintenance="sometimes")[0].startswith("maintenance: ")
    assert found(maintenance_allow=["example.com"])[0].startswith("maintenance_allow: entries must be IP addresses")
    assert found(maintenance_page=str(tmp_path / "missing.html"))[0].startswith("maintenance_page: must be HTML")
    assert "larger than 256 KiB" in found(maintenance_page="<p>" + "x" * 300_000)[0]
    assert found(maintenance_typo=1) == ["maintenance_typo: is not a variable of this project (a typo?)"]
    assert settings(maintenance_allow=["10.0.0.5"]).maintenance_allow == ["10.0.0.5/32"]
    assert settings(maintenance_allow="10.0.0.0/8").maintenance_allow == ["10.0.0.0/8"]  # --data gives one as text


def test_the_page_goes_up_for_migrations_only_and_comes_down(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path))
    release = tmp_path / "mysite" / "releases" / "r1"
    release.mkdir(parents=True)
    flag = tmp_path / "mysite" / "maintenance" / "migrating"
    put_up, take_down = migrating_commands(site, str(release))

    (release / ".django.json").write_text(json.dumps({"pending": []}))
    assert sh(put_up).returncode == 0 and not flag.exists()

    (release / ".django.json").write_text(json.dumps({"pending": ["guestbook.0002_note_mood"]}))
    done = sh(put_up)
    assert done.returncode == 0 and flag.exists(), done.stderr
    assert sh(take_down).returncode == 0 and not flag.exists()
    assert sh(take_down).returncode == 0  # already down: still fine (the failure cleanup runs it too)
