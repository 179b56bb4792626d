"""Install what the app needs on the host: webserver, uWSGI, Python, uv."""

from deploys.djangoapp import prepare_host

prepare_host()
