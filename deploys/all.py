"""From a bare host to the live site: host prep, app skeleton, release (`fab all`)."""

from deploys.djangoapp import app_skeleton, prepare_host, release

# uv installs in the background while the skeleton is made; the release waits for it.
prepare_host(tools_in_background=True)
app_skeleton()
release()
