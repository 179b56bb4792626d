"""The new release's Django, asked before it serves: where its files and databases are (so they
are linked to shared/ first), collectstatic, the deploy checks and the migrations still to apply.

When Django cannot start, the operator gets one line naming the cause and, where there is one,
the variable that fixes it, with Django's own output below.
"""

from __future__ import annotations


from pyinfra.api import operation

from ..core.shell import q, read_json
from .migrate import MIGRATE_FIRST

# (text in Django's last line of output, what to say). First match wins.
CAUSES = (
    ("No module named", "the release imports a module its virtualenv lacks: add the package to the project's "
                        "dependency file (django_dependency_file) or to django_dependencies"),
    ("SECRET_KEY", "SECRET_KEY is empty: read it from the environment in the settings and put it in "
                   "django_environment_variables (the secrets)"),
    ("unable to open database file", "the sqlite database cannot be opened: its folder must be writable by "
                                     "uwsgi_user; a file inside the release is linked to shared/db by the deploy"),
    ("password authentication failed", "PostgreSQL refused the password: DJANGO_DB_PASSWORD in "
                                       "django_environment_variables (DATABASE_URL carries it)"),
    ("Connection refused", "a service the settings name does not answer (database, Redis): check database, "
                           "redis_url and the settings' DATABASES"),
    ("DJANGO_SETTINGS_MODULE", "the settings module cannot be loaded: check django_settings_file"),
    ("ImproperlyConfigured", "the settings are incomplete: see Django's message"),
)


def explain_failure(output: str, step: str) -> str:
    """Shell: after a failed Django command whose output is in `output`, print one line with the
    cause (Django's last line) and a hint, then the output itself."""
    hints = " ".join(f"*{q(text)}*) hint={q(hint)};;" for text, hint in CAUSES)
    return (f'cause="$(grep -v "^[[:space:]]*$" {q(output)} | tail -n 1)"; hint=""; '
            f'case "$cause" in {hints} esac; '
            f'echo "the new release failed {step}: $cause" >&2; '
            f'[ -z "$hint" ] || echo "  $hint" >&2; '
            f'echo "--- its output:" >&2; cat {q(output)} >&2')


OWN_STATIC = ".static-own"


def compile_command(python: str, release_dir: str) -> tuple[str, str]:
    """Shell (start, wait): the release's bytecode compiled in the background while Django starts;
    waiting, a file that does not compile fails the release naming the file and the line, in
    compileall's words."""
    log = q(f"{release_dir}/.compile.log")
    start = f"{python} -m compileall -q -x '/[.]venv/' {q(release_dir)} > {log} 2>&1 & compile=$!"
    wait = (f"if ! wait $compile; then echo 'the new release does not compile:' >&2; cat {log} >&2; exit 1; fi; "
            f"rm -f {log}")
    return start, wait


def bridge_assets(source: str, target: str) -> str:
    """Shell: copy the static files the release `source` collected itself into the release
    `target`'s, where it has no file of that name, so pages served by either keep loading their
    stylesheets and scripts after a switch to the other (Kamal's asset bridging). Only the
    source's own files are copied: a release carries its own and its neighbour's, never more.
    `source` and `target` are shell words (a quoted path, or "$variable")."""
    return (f"from={source}; to={target}; "
            f'if [ -f "$from/{OWN_STATIC}" ] && [ -d "$from/.static/" ] && [ -d "$to/.static/" ]; then '
            f'(cd "$from/.static/" && xargs -r -d \'\\n\' -a "$from/{OWN_STATIC}" cp --parents -n -t "$to/.static/"); '
            "fi")


def between_command(release_dir: str, link_shared: str, link: str) -> str:
    """Shell, as root between collectstatic and the checks: what lives across releases linked in
    (link-shared.py), then the static files bridged both ways between this release and the live
    one `link` points at (bridge_assets): the live one's into this, and this one's into the live
    one, since while a fleet switches batch by batch a page of a host already switched asks for
    its assets from one that is not yet (behind a load balancer)."""
    own = f"{release_dir}/{OWN_STATIC}"
    bridge = bridge_assets('"$live"', q(release_dir))
    bridge_back = bridge_assets(q(release_dir), '"$live"')
    return " && ".join(f"{{ {part}; }}" for part in [
        f"/usr/bin/python3 {q(link_shared)} {q(release_dir)}",
        # What this release collected (listed before the bridge adds the live one's), kept under
        # its name only once the bridge is done: its absence says where a failure stopped.
        f"(cd {q(release_dir)}/.static/ && find . -type f -printf '%P\\n') > {q(own)}.new",
        f'live="$(readlink {q(link)})"; if [ -n "$live" ]; then {bridge}; fi',
        f"mv {q(own)}.new {q(own)}",
        f'if [ -n "$live" ]; then {bridge_back}; fi',
    ])


@operation(is_idempotent=False)
def inspect_release(release_dir: str, manage: str, script: str, link_shared: str, python: str, link: str,
                    app_user: str, build_commands: list[str], stand_ins: dict[str, str],
                    judge_migrations: bool = False):
    """Ask the new release's Django, in one start (inspect-release.py's inspect_release), while its
    bytecode compiles:
    1. as root: the build commands (django_build_commands), collectstatic, and where STATIC_ROOT,
       MEDIA_ROOT and the sqlite files are (.paths.json); then link-shared.py links them to
       shared/, and the live release's static files are bridged in (bridge_assets), and this
       release's into the live one
    2. as the app user: the deploy checks (errors stop the release) and the pending migrations
       and the state they lead to (.django.json, .migrations.json), for the next steps; with
       `judge_migrations`, the migration gate's verdicts on them (migration_gate.py).
    Each start of Django costs about half a second of CPU on the host: one, not one per user."""
    out, own = f"{release_dir}/.django.out", f"{release_dir}/{OWN_STATIC}"
    between = between_command(release_dir, link_shared, link)
    code = (f"exec(open({script!r}).read()); "
            f"inspect_release({release_dir!r}, {app_user!r}, {between!r}, {list(build_commands)!r}, {stand_ins!r}, "
            f"{bool(judge_migrations)!r})")
    first = "build commands, collectstatic" if build_commands else "collectstatic"
    step = (f'if [ ! -e {q(release_dir)}/.paths.json ]; then step="to start ({first})"; '
            f'elif [ ! -e {q(own)} ]; then step="to link its shared paths"; else step="its deploy checks"; fi')
    start_compiling, wait_compiled = compile_command(python, release_dir)
    yield (
        # Left by an earlier attempt at this release, they would misname the failed step, or keep
        # migrations back until the switch when this run's policy no longer asks it (MIGRATE_FIRST).
        f"rm -f {q(release_dir)}/.paths.json {q(own)} {q(release_dir)}/{MIGRATE_FIRST}; "
        f"{start_compiling}; "
        f"if ! {manage} --user root shell --verbosity 0 -c {q(code)} > {q(out)} 2>&1; then "
        f"{step}; {explain_failure(out, '$step')}; exit 1; fi; "
        # What Django said besides its answer (check --deploy's warnings) is shown.
        f"sed '$d' {q(out)} >&2; tail -n 1 {q(out)} > {q(release_dir)}/.django.json && rm -f {q(out)} && "
        f"{wait_compiled} && {read_json(f'{release_dir}/.django.json', 'migrations')} > {q(release_dir)}/.migrations.json"
    )
