"""pyinfra's settings for every deploy file run from this folder (pyinfra reads ./config.py)."""

from pyinfra import config

# The project's hosts change as one: a host that fails an operation (or cannot be reached) stops
# the run on every host, so a release never switches some hosts while another could not build it.
config.FAIL_PERCENT = 0
