"""Show the releases, snapshots, disk use and deploy lock of the project on each host."""

from deploys.djangoapp import status

status()
