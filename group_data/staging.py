"""Staging values (hosts in inventories/staging.py): as production, on its own host name."""

import os

websiteproject = "mysite"
url = "staging.example.com"
webserver = "nginx"
django_deployment_root_folder = "/srv/www"
django_settings_folder = "mysite"
django_settings_file = "mysite.settings"
django_source_dir = "../mysite"
django_pip_install_requirements = True
uwsgi_number_workers = 2
django_environment_variables = {
    "DJANGO_SECRET_KEY": os.environ.get("MYSITE_STAGING_SECRET_KEY", ""),
}
