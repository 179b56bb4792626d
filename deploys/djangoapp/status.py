"""Status: the releases on each host, which one is live, snapshots, disk use, the deploy lock and
the last backup.
Reads only: no operation is added."""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import FactBase, deploy

from .backups import backup_status
from .context import current_settings
from .fleet import ROLES

q = shlex.quote


class ProjectStatus(FactBase):
    """A readable report of a project's state on the host."""

    def command(self, project_root: str, certificate: str) -> str:
        root = q(project_root)
        return (
            f"if [ ! -d {root} ]; then echo 'not deployed here'; exit 0; fi; "
            f"echo 'releases (* = live):'; {root}/bin/release-history list 2>/dev/null | sed 's/^/  /'; "
            f"echo 'snapshots:'; ls -1sh {root}/snapshots 2>/dev/null | sed 1d | sed 's/^/  /'; "
            f"echo 'disk use:'; du -sh {root}/releases {root}/venvs {root}/versions {root}/snapshots "
            f"{root}/shared 2>/dev/null | sed 's/^/  /'; "
            f"if [ -f {q(certificate)} ]; then echo \"certificate: $(openssl x509 -in {q(certificate)} -noout "
            f"-issuer -enddate | tr '\\n' ' ')\"; fi; "
            f"if [ -f {root}/.deploy-lock/holder.json ]; then echo \"deploy lock: held by $(cat {root}/.deploy-lock/holder.json)\"; "
            f"else echo 'deploy lock: free'; fi"
        )

    def process(self, output):
        return list(output)


@deploy("Status")
def status():
    settings = current_settings()
    report = host.get_fact(ProjectStatus, project_root=settings.project_root,
                           certificate=settings.ssl_certificate_path if settings.is_web else "")
    logger.info(f"{host.print_prefix}{settings.websiteproject} at {settings.project_root} "
                f"(roles: {', '.join(role for role in ROLES if role in settings.roles)})")
    for line in report + backup_status(settings):
        logger.info(f"{host.print_prefix}{line}")
