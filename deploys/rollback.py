"""Go back to the previous good release (or --data rollback_to=<id>), the database with it."""

from deploys.djangoapp import rollback

rollback()
