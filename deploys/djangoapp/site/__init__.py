"""The site a host serves (the old role's "skeleton"): the webserver's config and Apache's tools
(webserver), the app server under systemd (app_server), TLS with its issuing and syncing
(certificates, certificate_sync), the maintenance page, the load balancer in front of the web
hosts (load_balancer); skeleton puts them together."""
