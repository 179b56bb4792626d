"""Remove the project from the host (needs --data confirm_remove=<websiteproject>)."""

from deploys.djangoapp import remove

remove()
