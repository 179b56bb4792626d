"""Show the project's logs from every host, merged in time order: --data since=, lines=, grep=, unit=."""

from deploys.djangoapp import logs

logs()
