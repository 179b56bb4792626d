"""deploys/manage.py: the management command line, where it runs, and what its output may show."""

import subprocess

from deploys.djangoapp.core.callbacks import mask_secrets
from deploys.djangoapp.operate.manage import management_command, runs_here
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, placed_fleet, settings


def test_each_word_reaches_manage_py_as_one_argument_and_no_shell_reads_it(tmp_path):
    site = settings(manage="""shell -c 'print("a b")' --note "$(touch pwned)" ;rm""")
    command = management_command(site).replace("/srv/www/mysite/bin/manage", "printf '[%s]\\n'", 1)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout.splitlines() == ["[shell]", "[-c]", '[print("a b")]', "[--note]", "[$(touch pwned)]", "[;rm]"]
    assert not (tmp_path / "pwned").exists()


def test_the_command_line_is_one_line_starting_with_a_command_name():
    for bad, reason in [("", "must start with the name of a management command"),
                        ("'unclosed", "cannot be split into words"),
                        ("../bin/sh -c x", "must start with the name of a management command"),
                        ("shell\n-c x", "must be one line")]:
        _, found = problems({**VALID, "manage": bad})
        assert len(found) == 1 and found[0].startswith("manage: ") and reason in found[0], (bad, found)
    _, found = problems({**VALID, "manage_on": "everywhere"})
    assert found and found[0].startswith("manage_on: ")


def test_secrets_in_the_output_are_masked():
    secrets = {"DJANGO_SECRET_KEY": "s3cret-key-value", "DATABASE_URL": "postgres://u:pw-123@db/x", "SHORT": "ab"}
    line = "key=s3cret-key-value url=postgres://u:pw-123@db/x other=redis://:hunter22@h/0 ab"
    masked = mask_secrets(line, secrets)
    assert "s3cret-key-value" not in masked and "pw-123" not in masked and "hunter22" not in masked
    assert masked.endswith(" ab")  # values too short to be secrets are left alone


def test_it_runs_on_the_migration_host_or_on_every_app_host():
    for manage_on, expected in [("migration_host", {"web1"}), ("all", {"web1", "web2"})]:
        hosts = placed_fleet(manage_on=manage_on)
        assert {name for name, site in hosts.items() if runs_here(site)} == expected
