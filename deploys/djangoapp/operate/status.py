"""Status: the releases on each host, which one is live, snapshots, disk use, the certificate (its
issuer and end; a warning when it ends within 14 days or its renewal fails), scheduled commands,
the audit log's last entries, the deploy lock, each web host as a load balancer sees it, the last
backup, and what the migration gate said of the live release's migrations.
Reads only: no operation is added."""

from __future__ import annotations


from pyinfra import host, logger
from pyinfra.api import FactBase, deploy

from ..core.audit import last_entries_command
from ..core.context import current_settings
from ..core.shell import q
from ..release.migration_gate import gate_status
from ..services.backups import backup_status
from ..site.load_balancer import lb_status

# A certificate this close to its end is shown as a warning (certbot renews 30 days before).
WARN_DAYS = 14


class ProjectStatus(FactBase):
    """A readable report of a project's state on the host."""

    def command(self, project_root: str, certificate: str, project: str, audit: str,
                renewal_failure: str = "") -> str:
        root = q(project_root)
        return (
            f"if [ ! -d {root} ]; then echo 'not deployed here'; exit 0; fi; "
            f"echo 'releases (* = live):'; {root}/bin/release-history list 2>/dev/null | sed 's/^/  /'; "
            f"echo 'snapshots:'; ls -1sh {root}/snapshots 2>/dev/null | sed 1d | sed 's/^/  /'; "
            f"echo 'disk use:'; du -sh {root}/releases {root}/venvs {root}/versions {root}/snapshots "
            f"{root}/shared 2>/dev/null | sed 's/^/  /'; "
            f"if [ -f {q(certificate)} ]; then echo \"certificate: $(openssl x509 -in {q(certificate)} -noout "
            f"-issuer -enddate | tr '\\n' ' ')\"; "
            f"openssl x509 -in {q(certificate)} -noout -checkend {WARN_DAYS * 86400} >/dev/null || "
            f"echo \"warning: the certificate expires within {WARN_DAYS} days "
            f"($(openssl x509 -in {q(certificate)} -noout -enddate | cut -d= -f2))\"; fi; "
            f"if [ -n {q(renewal_failure)} ] && [ -f {q(renewal_failure)} ]; then echo \"warning: certificate renewal "
            f"failing since $(sed -n 's/^since=//p' {q(renewal_failure)}) ($(sed -n 's/^unit=//p' {q(renewal_failure)})): "
            f"$(sed -n 's/^cause=//p' {q(renewal_failure)})\"; fi; "
            f"{scheduled_jobs_status(project)}; {audit}; "
            f"if [ -f {root}/.deploy-lock/holder.json ]; then echo \"deploy lock: held by $(cat {root}/.deploy-lock/holder.json)\"; "
            f"else echo 'deploy lock: free'; fi"
        )

    def process(self, output):
        return list(output)


def scheduled_jobs_status(project: str, units_dir: str = "/etc/systemd/system") -> str:
    """Shell: each scheduled job of the project on this host, when it last ran and how that ended,
    when it runs next (schedules.py). A timer has no next time while its job runs."""
    return (f"for timer in {units_dir}/{project}-job-*.timer; do [ -e \"$timer\" ] || continue; "
            'job=$(basename "$timer" .timer); '
            'next=$(systemctl show -P NextElapseUSecRealtime "$job.timer"); '
            '[ -n "$next" ] || case $(systemctl show -P ActiveState "$job.service") in '
            'activating|active|deactivating) next="when the run in progress ends";; '
            '*) next="never: its timer is stopped";; esac; '
            'echo "scheduled ${job#*-job-}: last run '
            '$(systemctl show -P LastTriggerUSec "$job.timer" | sed "s/^$/never/")'
            ' (result: $(systemctl show -P Result "$job.service"), exit status '
            '$(systemctl show -P ExecMainStatus "$job.service")), next $next"; done')


@deploy("Status")
def status():
    settings = current_settings()
    report = host.get_fact(ProjectStatus, project_root=settings.project_root, project=settings.websiteproject,
                           audit=last_entries_command(settings),
                           certificate=settings.ssl_certificate_path if settings.is_web or settings.is_lb else "",
                           renewal_failure=settings.certificate_renewal_failure if settings.is_front else "")
    logger.info(f"{host.print_prefix}{settings.websiteproject} at {settings.project_root} "
                f"(roles: {settings.role_names})")
    for line in report + lb_status(settings) + backup_status(settings) + gate_status(settings):
        (logger.warning if line.startswith("warning:") else logger.info)(f"{host.print_prefix}{line}")
