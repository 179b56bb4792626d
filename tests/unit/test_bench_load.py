"""The load client's reading of a page: the static files a browser would fetch (bench/load.py)."""

from bench.load import linked_assets

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="/static/guestbook/site.css">
<link rel='icon' href='/static/favicon.ico?v=2'>
<script src="/static/app.js" defer></script>
<link rel="stylesheet" href="/static/guestbook/site.css">
</head><body>
<a href="/notes/">notes</a> <img src="https://cdn.example.com/static/x.png">
<img src = "/static/img/logo.png" alt="">
</body></html>"""


def test_each_static_file_a_page_links_is_fetched_once_in_page_order():
    assert linked_assets(PAGE) == ["/static/guestbook/site.css", "/static/favicon.ico?v=2", "/static/app.js",
                                   "/static/img/logo.png"]


def test_links_that_are_not_static_files_of_the_site_are_not_fetched():
    assert linked_assets('<a href="/notes/">x</a><img src="https://cdn.example.com/static/x.png">') == []
    assert linked_assets("") == []
