"""The value checks the settings model is built from (settings/checks.py), called directly."""

import pytest

from deploys.djangoapp.settings.checks import (
    absolute_clean_path,
    command_problem,
    host_names,
    one_line,
    pem_or_file,
    positive_int,
    system_folder_problem,
)


def test_a_path_loses_its_trailing_slashes_but_the_root_stays():
    assert absolute_clean_path("/srv/www/") == "/srv/www" and absolute_clean_path("/srv//") == "/srv"
    assert absolute_clean_path("/") == "/"


@pytest.mark.parametrize(("path", "said"), [
    ("/opt/django-deploy-tools", "/opt/django-deploy-tools is /opt/django-deploy-tools, which holds the system's "
                                 "files (or the kit's own), not a project's; use a folder of its own, e.g. /srv/www"),
    ("/usr/local/site", "/usr/local/site is inside /usr, which holds the system's files (or the kit's own), not a "
                        "project's; use a folder of its own, e.g. /srv/www"),
    ("/lib64/x", "/lib64/x is inside /lib64, which holds the system's files (or the kit's own), not a project's; "
                 "use a folder of its own, e.g. /srv/www"),
    ("/lib", "/lib is /lib, which holds the system's files (or the kit's own), not a project's; use a folder of "
             "its own, e.g. /srv/www"),
    ("/var/backups", "/var/backups is a folder of the system, which the kit would take over (change its owner, or "
                     "remove it with the project); use a folder of its own, e.g. /srv/www"),
    ("/srv/www", None), ("/library", None), ("/var/backups/site", None),
])
def test_a_system_folder_is_named_with_the_tree_it_is_in(path, said):
    assert system_folder_problem(path) == said


def test_one_line_takes_none_and_printable_text_only():
    assert one_line(None) is None and one_line("a b ~") == "a b ~"
    for bad in ("", "a\nb", "tab\there", "\x1f"):
        with pytest.raises(ValueError, match="^must be some text on one line$"):
            one_line(bad)


def test_numbers_names_and_commands_are_refused_with_their_reason():
    assert positive_int(1) == 1
    for bad in (0, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="must be a positive whole number"):
            positive_int(bad)
    assert host_names(["example.com", "www.example.com"]) == ["example.com", "www.example.com"]
    with pytest.raises(ValueError, match=r"^must be host names \(got \['bad name'\]\)$"):
        host_names(["example.com", "bad name"])
    assert command_problem("clearsessions --verbosity 2") is None
    assert command_problem("check\n--deploy") == "must be one line of text without control characters"
    assert command_problem(["check"]) == "must be one line of text without control characters"


def test_pem_text_is_taken_as_it_is_or_read_from_its_file(tmp_path):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert pem_or_file(pem, "CERTIFICATE") == pem and pem_or_file(None, "CERTIFICATE") is None
    (tmp_path / "site.crt").write_text(pem.replace("MIIB", "MIIB é"), encoding="utf-8")
    assert pem_or_file(str(tmp_path / "site.crt"), "CERTIFICATE") == pem.replace("MIIB", "MIIB é")
    with pytest.raises(ValueError, match="^must be PEM text or the path of a file holding it on this machine$"):
        pem_or_file(str(tmp_path / "missing.crt"), "CERTIFICATE")
