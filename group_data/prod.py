"""Production values (hosts in inventories/prod.py). Secrets come from the environment of the
machine that runs pyinfra (or your vault), never from the repository."""

import os

websiteproject = "mysite"
url = "www.example.com"
webserver = "nginx"
django_deployment_root_folder = "/srv/www"
django_settings_folder = "mysite"
django_settings_file = "mysite.settings"
django_source_dir = "../mysite"
django_pip_install_requirements = True
uwsgi_number_workers = 4
django_environment_variables = {
    "DJANGO_SECRET_KEY": os.environ.get("MYSITE_SECRET_KEY", ""),
}
