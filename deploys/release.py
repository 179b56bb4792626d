"""Build a new release beside the live one and switch to it once it is healthy."""

from deploys.djangoapp import release

release()
