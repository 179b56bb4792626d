"""Production hosts: copy this file and put your own in. Values for them go in group_data/prod.py.

Each host's roles are the groups it is in: `web` (nginx or Apache, uWSGI), `worker` (Celery), `db`
(PostgreSQL, and Redis when redis_url is on the loopback). A host may be in several groups; one
in none holds all three (see inventories/staging.py). A host in `lb` (HAProxy, a host of its own)
is a load balancer in front of the web hosts: add it, and point the site's name at it. `private_address` is the address the other
hosts reach it at: PostgreSQL and Redis listen there, and only the fleet's addresses get in.

pyinfra checks SSH host keys: add each host's key to ~/.ssh/known_hosts before the first run
(ssh-keyscan, compared with the key your provider shows you).
"""

_login = {"ssh_user": "deploy", "_sudo": True}

web = [
    ("web1.example.com", {**_login, "private_address": "10.0.0.11"}),
    ("web2.example.com", {**_login, "private_address": "10.0.0.12"}),
]
worker = [
    ("worker1.example.com", {**_login, "private_address": "10.0.0.21"}),
]
db = [
    ("db1.example.com", {**_login, "private_address": "10.0.0.31"}),
]
