"""Staging hosts: copy this file and put your own in. Values for them go in group_data/staging.py."""

web = [
    ("staging.example.com", {"ssh_user": "deploy", "_sudo": True}),
]
