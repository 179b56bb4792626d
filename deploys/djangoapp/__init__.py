"""The deploy functions behind the entry files in deploys/.

Each entry file (deploys/host_prep.py, deploys/release.py, ...) calls one of these; every one of
them starts by validating the settings of all hosts, so a bad value stops the run before any host
is touched.
"""

from .backups import backup_now, restore
from .commands import run_management_command
from .host_prep import prepare_host
from .logs import logs
from .maintenance import maintenance_mode
from .release import release
from .remove import remove
from .restart import restart
from .rollback import rollback
from .skeleton import app_skeleton
from .status import status

__all__ = ["app_skeleton", "backup_now", "logs", "maintenance_mode", "prepare_host", "release", "remove", "restart",
           "restore", "rollback", "run_management_command", "status"]
