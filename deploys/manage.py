"""Run a management command of the live release: --data manage="createsuperuser --noinput ..."."""

from deploys.djangoapp import run_management_command

run_management_command()
