"""Back the project up now (database and uploads to backup_repository), as its timer does."""

from deploys.djangoapp import backup_now

backup_now()
