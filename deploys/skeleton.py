"""Folders, secrets, TLS, the uWSGI service and the webserver site of the app."""

from deploys.djangoapp import app_skeleton

app_skeleton()
