"""From a bare host to the live site: host prep, app skeleton, release (`fab all`)."""

from deploys.djangoapp import app_skeleton, prepare_host, release

# The packages and uv install in the background while the skeleton writes what needs none of them.
prepare_host(in_background=True)
app_skeleton()
release()
