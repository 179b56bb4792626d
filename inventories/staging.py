"""Staging hosts: copy this file and put your own in. Values for them go in group_data/staging.py.

One server holds the whole project here: a host in none of the groups web, worker and db holds
all three roles. pyinfra checks SSH host keys: add the host's key to ~/.ssh/known_hosts before the
first run (ssh-keyscan, compared with the key your provider shows you).
"""

servers = [
    ("staging.example.com", {"ssh_user": "deploy", "_sudo": True}),
]
