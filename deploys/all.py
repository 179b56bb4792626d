"""From a bare host to the live site: host prep, app skeleton, release (`fab all`)."""

from deploys.djangoapp import app_skeleton, prepare_host, release

prepare_host()
app_skeleton()
release()
