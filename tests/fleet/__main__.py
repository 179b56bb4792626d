"""The demo: deploy the example app to a throwaway local host and print its URL.

    python -m tests.fleet demo    start (or restart) the demo host and deploy deploys/all.py to it
    python -m tests.fleet down    remove the demo host
"""

import os
import subprocess
import sys

from . import FLEET_DIR, REPO, HostGroup, ensure_docker, ensure_image, ensure_ssh_key, write_fleet_file

DEMO_PROJECT = "webappdemo"


def demo_hosts() -> HostGroup:
    """The demo's compose project (hosts.yml's `demo` service), which outlives this command."""
    return HostGroup(DEMO_PROJECT, ensure_ssh_key(), keep=True)


def demo() -> int:
    ensure_docker()
    image = ensure_image("bookworm")
    hosts = demo_hosts()
    hosts.remove()
    print(f"starting a throwaway Debian host (compose project {DEMO_PROJECT}) ...", flush=True)
    (host,) = hosts.start("demo", image=image)
    fleet_file = write_fleet_file(FLEET_DIR / "hosts.json", hosts.key, [host])
    command = [sys.executable, "-m", "pyinfra", "-y", "inventories/local.py", "deploys/all.py"]
    print("$ " + " ".join(command[2:]), flush=True)
    deployed = subprocess.run(command, cwd=REPO, env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file)})
    if deployed.returncode != 0:
        print("the deploy failed; the host is still up for a look: "
              f"docker exec -it {host.container} bash", file=sys.stderr)
        return deployed.returncode
    print(f"\nThe example app is live at https://localhost:{host.https_port}/ "
          "(self-signed certificate)\nRemove the host with: bash scripts/demo.sh down")
    return 0


def down() -> int:
    ensure_docker()
    demo_hosts().remove()
    return 0


if __name__ == "__main__":
    commands = {"demo": demo, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
