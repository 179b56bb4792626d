"""Every deploy variable with its default. Set your values in group_data/<inventory name>.py
(group_data/prod.py for inventories/prod.py) or per host in the inventory; these are the fallback.

The names are those of the Ansible role this project grew from. None means "not set": for the
variables marked REQUIRED a deploy stops with an error naming them, before touching any host.
deploys/djangoapp/settings/ validates all of them, one module per concern (a test keeps this file in step with it).
"""

# --- Project (the Ansible role's names) ---------------------------------------------------
websiteproject = None  # REQUIRED. Name of the project: folder, service and site names. [a-z0-9_-]
url = None  # REQUIRED. Host name the site answers to, e.g. "app.example.com" (no scheme).
webserver = None  # REQUIRED. "nginx" or "apache2" ("apache" is accepted too).
django_deployment_root_folder = None  # REQUIRED. Absolute folder holding all projects, e.g. "/srv/www".
django_settings_folder = None  # REQUIRED. Python package holding wsgi.py, e.g. "mysite".
django_settings_file = None  # REQUIRED. Settings module of this deployment, e.g. "mysite.settings.production".
django_source_folder = ""  # Folder of manage.py inside the source tree ("" = its top).
django_archives_to_deflate = []  # Archives inside the release to unpack in place after the source.
django_dependencies = []  # Extra pip requirements for the release virtualenv, e.g. ["django==5.2.*"].
django_pip_install_requirements = False  # Install requirements.txt (the seed's switch; see django_dependency_file).
django_dependency_file = "auto"  # uv.lock, poetry.lock, pyproject.toml or requirements.txt found at the top; or a path; or "none".
django_linked_dirs = []  # Folders inside the release kept in shared/ across releases, e.g. ["var/cache"].
django_linked_files = []  # Files inside the release kept in shared/ across releases, e.g. ["search.idx"].
django_build_commands = []  # Management commands run as root in each new release before collectstatic, e.g. ["compilemessages"] (its files are built, not committed).
django_environment_variables = {}  # Secrets: written to the secret file (DJANGO_SETTINGS_SECRET_FILE).
django_webapplication_additional_environment_settings = {}  # Extra (non-secret) environment of the app.
django_revision_file_pattern = None  # Release archive name, "${VAR}" taken from the environment.
application_additional_packages = []  # Extra Debian packages the app needs.
site_certificate = None  # PEM text or local path of the TLS certificate; None: self-signed.
site_key = None  # PEM text or local path of its private key (give both or neither).
site_proxy = None  # HTTP(S) proxy for apt, pip and uv on the host, e.g. "http://proxy:3128", given to them in root-only files.

# --- uWSGI --------------------------------------------------------------------------------
uwsgi_number_workers = 2  # Worker processes.
uwsgi_user = None  # User running the app; None: one of the project's own, django-<websiteproject>.
uwsgi_group = None  # Its group: may read the secret file; None: uwsgi_user's name.
uwsgi_additional_options = []  # Lines appended to the uWSGI ini as given.

# --- Webservers ---------------------------------------------------------------------------
nginx_binary_name = "/usr/sbin/nginx"  # Used to test the configuration before a reload.
nginx_user = "www-data"  # nginx's user.
nginx_group = "www-data"  # nginx's group: may read the TLS key and use the app server's socket.
apache2_check_binary_name = "a2ensite"  # Apache's site tool.
apache2_user = "www-data"  # Apache's user.
apache2_group = "www-data"  # Apache's group: may read the TLS key and use the app server's socket.

# --- Secrets kept encrypted ("{{ name }}" in a value is the secret of that name) ---------------
secrets_files = []  # Files of "name: value" lines encrypted with ansible-vault or age, e.g. ["vault_vars/mysite"].
vault_password_file = None  # File holding the Ansible Vault password, or a program printing it; None: ANSIBLE_VAULT_PASSWORD_FILE.
age_identity_file = None  # File of the age keys that decrypt the age files of secrets_files.
secrets_command = None  # Command printing secrets (JSON, or NAME=value lines), e.g. "pass show mysite/deploy".

# --- Services beside the app --------------------------------------------------------------
database = "sqlite"  # "sqlite" (file in shared/db) or "postgresql".
celery = False  # Run a Celery worker for the app (systemd unit), with Redis as its broker.
celery_beat = False  # Also run Celery beat (periodic tasks).
celery_app = None  # Module of the Celery app for `celery -A`; default: django_settings_folder.
celery_concurrency = 2  # Worker processes of the Celery worker.
redis_url = "redis://127.0.0.1:6379/0"  # Celery's broker; on the loopback: Redis is installed on the db host.
memcached = False  # Run memcached on web hosts (as the fabfile did); the app gets CACHE_URL.
deploy_user = None  # Create this user for later runs (ssh_user), with passwordless sudo; a user it no longer names loses that sudo.
deploy_user_ssh_keys = []  # Public SSH keys (text) that may log in as deploy_user: its authorized_keys holds these and no others.
python_interpreter = "/usr/bin/python3"  # Python of the release virtualenvs (uWSGI's plugin needs the host's): a path, or with gunicorn/asgi a version in quotes ("3.12") that uv finds on the host or installs.

# --- App server ---------------------------------------------------------------------------
app_server = "uwsgi"  # What serves the app: "uwsgi" (Debian's, on the host's Python), "gunicorn" (WSGI) or "asgi" (gunicorn's ASGI worker: async views, WebSockets); gunicorn runs from the release's virtualenv (pinned by the deploy unless the project's dependencies bring it).
app_server_workers = 2  # Worker processes of gunicorn and asgi (uWSGI keeps uwsgi_number_workers).
app_server_options = []  # Extra gunicorn options, each "--name" or "--name=value" (e.g. "--threads=4"); those the deploy sets (bind, workers, user...) are refused.
django_asgi_module = None  # The project's ASGI module for app_server "asgi" (default: <django_settings_folder>.asgi).

# --- Certificates from ACME, e.g. Let's Encrypt -------------------------------------------
acme_email = None  # Turns ACME on: a certificate for url (and acme_extra_domains) from acme_directory, renewed by certbot's timer (several web hosts: on the first, the others fetch it); this address gets the CA's expiry notices. Excludes site_certificate.
acme_directory = "https://acme-v02.api.letsencrypt.org/directory"  # The ACME CA; Let's Encrypt's staging: https://acme-staging-v02.api.letsencrypt.org/directory.
acme_ca_certificate = None  # PEM text or local path of a private ACME server's root (its directory's TLS), for private CAs and tests.
acme_extra_domains = []  # More names on the same certificate (each must reach this host, or one of the web hosts).

# --- Releases, rollback, removal ----------------------------------------------------------
keep_releases = 5  # Releases kept on the host (the live one always is).
health_check_path = None  # Must answer 200 after each switch; None: "/" must answer below 500.
health_check_timeout = 60  # Seconds the new release (web and Celery worker) has to answer.
django_source_dir = None  # Release source: a local directory, packed and uploaded.
django_release_archive = None  # Release source: a local .tar.gz/.tar.bz2/.zip, or a folder of them (see django_revision_file_pattern).
django_git_repo = None  # Release source: a git repository (local path or URL), archived at django_git_ref.
django_git_ref = "HEAD"  # Branch, tag or commit of django_git_repo to release.
release_id = None  # Name of the new release; default: UTC time of the run, e.g. "20260101120000".
release_break_lock = False  # Break the deploy lock another (killed) run left on the host.
lock_wait = 0  # Seconds a deploy waits for another one holding the project's lock (0: fail at once).
migration_lock_timeout = 2  # PostgreSQL: seconds a migration waits for a table's lock before it is stopped and tried again (twice), then fails (0: no limit).
migration_statement_timeout = 0  # PostgreSQL: seconds one statement of a migration may run before it is stopped and the release fails (0: no limit): an ALTER rewriting a big table blocks it all that time.
migration_safety = "refuse"  # Pending migrations the live release cannot run beside (drops, renames, NOT NULL, RunPython): "refuse" stops the release before they run; "maintenance" runs them behind the maintenance page; "switch-first" runs the drops the new release works beside after the switch, refusing the rest; "allow" runs them.
allow_unsafe_migrations = []  # This release only: migrations ("app.0003_name", comma-separated) the gate lets run though it judged them unsafe.
rollback_to = None  # deploys/rollback.py: release id to go back to; default: the previous good release.
rollback_restore_snapshot = False  # Rollback over irreversible migrations by restoring the snapshot (loses later writes).
rollback_drop_data = None  # A rollback whose migrating back drops tables or columns holding rows runs only when this equals websiteproject.
confirm_remove = None  # deploys/remove.py runs only when this equals websiteproject.

# --- Day-2 deploy files: manage.py, logs.py -----------------------------------------------
manage = None  # deploys/manage.py: the management command to run in the live release, e.g. "createsuperuser --noinput --username admin".
manage_on = "migration_host"  # Where deploys/manage.py runs it: "migration_host", or "all" (every web and worker host).
since = "1 hour ago"  # deploys/logs.py: journal entries since then (journalctl --since).
lines = 100  # deploys/logs.py: at most this many lines per host and log.
grep = None  # deploys/logs.py: only lines holding this text (any case).
unit = None  # deploys/logs.py: one kind of log only: "app", "celery", "beat", "webserver" or "jobs" (scheduled commands).

# --- Scheduled management commands ---------------------------------------------------------
django_scheduled_commands = {}  # name -> {"command": "clearsessions", "schedule": "daily"} (systemd OnCalendar): run on migration_host against the live release, never twice at once, waiting while migrations run.

# --- Backups off the host (restic), and restore -------------------------------------------
backup_repository = None  # Where backups go: "s3:https://host/bucket/path", "sftp:user@host:/path" or a local path (a second disk); None: no backups. Its credentials go in backup_secrets.
backup_secrets = {}  # The backup's credentials: RESTIC_PASSWORD (and for S3 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); only the backup reads them, never the app.
backup_schedule = "daily"  # When the backup timer runs (systemd OnCalendar), e.g. "*-*-* 03:00:00".
backup_keep = {"daily": 7, "weekly": 4, "monthly": 6}  # Backups kept after each one (restic forget --keep-daily/weekly/monthly); older ones are pruned.
backup_prune = True  # Forget and prune what backup_keep does not keep after each backup; False for an append-only repository.
restore_from = None  # deploys/restore.py: the backup to restore, a snapshot id (restic's) or "latest".
confirm_restore = None  # deploys/restore.py runs only when this equals websiteproject.

# --- Maintenance mode: deploys/maintenance.py ---------------------------------------------
maintenance = None  # deploys/maintenance.py: "on" or "off"; release.py: "during_migrations" puts the page up only while migrations run.
maintenance_page = None  # HTML text or local path of the page served with the 503 (self-contained; /static/ stays served); None: a plain page.
maintenance_allow = []  # IP addresses or networks still served the site in maintenance (the host itself always is), e.g. ["203.0.113.7"].

# --- Notifications -----------------------------------------------------------------------
deploy_notify_url = []  # Webhooks (e.g. Slack's) POSTed JSON after each release, rollback and failed run, a failed backup, and a certificate renewal that fails or works again; secret: never shown.

# --- Several hosts (inventory groups web, worker, db; a host in none of them holds all three) ---
private_address = None  # This host's IP address on the fleet's private network; needed when there are several hosts.
migration_host = None  # Host that snapshots and migrates the database in a release; default: the first web host.
rolling_batch_size = None  # Web hosts switched to a new release (and reloaded by `restart.py`) at a time; None: all at once.
lb_backend_port = 8080  # With hosts in the lb group (HAProxy): the port on each web host's private address the load balancers send the site's requests to (plain HTTP).
lb_drain_timeout = 30  # Seconds a release waits for the requests in flight on a batch of web hosts the load balancers drain before it switches them; then it switches anyway (the graceful reload lets them end).
