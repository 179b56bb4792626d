"""The deploy functions behind the entry files in deploys/.

Each entry file (deploys/host_prep.py, deploys/release.py, ...) calls one of these; every one of
them starts by validating the settings of all hosts, so a bad value stops the run before any host
is touched.
"""

from .host.host_prep import prepare_host
from .operate.logs import logs
from .operate.manage import run_management_command
from .operate.remove import remove
from .operate.restart import restart
from .operate.status import status
from .release.release import release
from .release.rollback import rollback
from .services.backups import backup_now, restore
from .site.maintenance import maintenance_mode
from .site.skeleton import app_skeleton

__all__ = ["app_skeleton", "backup_now", "logs", "maintenance_mode", "prepare_host", "release", "remove", "restart",
           "restore", "rollback", "run_management_command", "status"]
