"""Small shell pieces every concern uses: quoting, reading a value of a JSON file on the host,
making text safe to print."""

from __future__ import annotations

import re
import shlex

q = shlex.quote

# Control characters but the tab (C0 with ESC, DEL, C1): the app's text (a request's path, an
# exception) reaches the operator's terminal, where they would clear it, retitle the window or
# hide lines.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def read_json(path: str, key: str) -> str:
    """Shell: one value of a JSON file (strings as they are, anything else as JSON)."""
    return (f"python3 -c 'import json, sys; value = json.load(open(sys.argv[1]))[sys.argv[2]]; "
            f"print(value if isinstance(value, str) else json.dumps(value))' {q(path)} {q(key)}")


def each_path(paths: list[str], body: str) -> str:
    """Shell: `body` run for each of `paths` in turn (as "$path"), whatever it answers: the facts
    that look at several paths in one command."""
    return f"for path in {' '.join(q(path) for path in paths)}; do {body}; done; true"


def wait_until(ready: str, seconds: int, on_timeout: str, pause: float = 0.2) -> str:
    """Shell: `ready` tried every `pause` seconds until it succeeds; once `seconds` have passed,
    `on_timeout` runs, and must end the wait (`exit 1`, or `break` to go on). One command in
    braces: after `&&` it runs only when what came before succeeded."""
    return (f"{{ deadline=$(($(date +%s) + {int(seconds)})); until {ready}; do "
            f'if [ "$(date +%s)" -ge $deadline ]; then {on_timeout}; fi; sleep {pause}; done; }}')


def visible(text: str) -> str:
    """`text` with each control character but the tab written out (ESC as \\x1b)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def fifo_write(fifo: str) -> str:
    """Shell: what comes on standard input, written to uWSGI's master FIFO at once or not at all
    (no reader: it fails), never through a link and never to a file made in its place."""
    return f"dd of={q(fifo)} oflag=nonblock,nofollow conv=notrunc,nocreat status=none"
