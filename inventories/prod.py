"""Production hosts: copy this file and put your own in. Values for them go in group_data/prod.py.

pyinfra checks SSH host keys: add each host's key to ~/.ssh/known_hosts before the first run
(ssh-keyscan, compared with the key your provider shows you).
"""

web = [
    ("app1.example.com", {"ssh_user": "deploy", "_sudo": True}),
]
