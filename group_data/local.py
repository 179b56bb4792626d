"""The local test fleet (inventories/local.py): the example app, served as https://localhost."""

import os

websiteproject = "guestbook"
url = "localhost"
webserver = "nginx"
django_deployment_root_folder = "/srv/www"
django_settings_folder = "exampleapp"
django_settings_file = "exampleapp.settings"
django_source_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "example"))
django_pip_install_requirements = True
health_check_path = "/health/"
# Short, so that the tests of failing releases do not wait long; real sites keep the default.
health_check_timeout = 20
django_environment_variables = {
    # A throwaway key for throwaway hosts. Real environments take theirs from a vault or the
    # environment of the machine that runs pyinfra, never from the repository.
    "DJANGO_SECRET_KEY": "local-fleet-only-4d1f0b7e2a9c46c8b7a1e6f3d5c2b8a0e9f7d6c5b4a3",
}
