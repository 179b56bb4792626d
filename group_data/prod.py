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
database = "postgresql"
celery = True
celery_beat = True
# Web hosts switch one at a time: the other keeps serving while one reloads.
rolling_batch_size = 1
django_environment_variables = {
    "DJANGO_SECRET_KEY": os.environ.get("MYSITE_SECRET_KEY", ""),
    "DJANGO_DB_PASSWORD": os.environ.get("MYSITE_DB_PASSWORD", ""),
    # Redis on the db host serves the other hosts: it asks for this password.
    "REDIS_PASSWORD": os.environ.get("MYSITE_REDIS_PASSWORD", ""),
}
