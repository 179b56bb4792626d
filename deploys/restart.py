"""Reload the webserver and uWSGI gracefully, restart Celery."""

from deploys.djangoapp import restart

restart()
