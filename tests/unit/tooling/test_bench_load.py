"""The load client's reading of a page: the static files a browser would fetch (bench/load.py)."""

import http.client
import time

from bench.load import Load, linked_assets

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


class ScriptedLoad(Load):
    """A Load whose connections answer from a script: a status, or an exception to raise."""

    def __init__(self, *outcomes):
        super().__init__(port=0, clients=0)
        self.outcomes, self.connections = list(outcomes), 0

    def connect(self, context):
        self.connections += 1
        return FakeConnection()

    def get(self, connection, path):
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome, "r1", b"<link href='/static/a.css'>"


class FakeConnection:
    def close(self):
        pass


def kept_alive():
    return {"context": None, "connection": FakeConnection()}


def test_a_kept_alive_connection_closed_unanswered_is_sent_again_once_on_a_new_one():
    load = ScriptedLoad(http.client.RemoteDisconnected("closed"), 200)
    assert load.fetch(kept_alive(), "/") == (None, "r1", b"<link href='/static/a.css'>")
    assert (load.retried, load.connections) == (1, 1)


def test_a_second_close_in_a_row_is_a_failure():
    load = ScriptedLoad(ConnectionResetError(), BrokenPipeError())
    assert load.fetch(kept_alive(), "/")[0] == "BrokenPipeError"
    assert load.retried == 1


def test_a_new_connection_failing_and_an_error_answer_are_failures_not_sent_again():
    load = ScriptedLoad(http.client.RemoteDisconnected("closed"))
    assert load.fetch({"context": None, "connection": None}, "/")[0] == "RemoteDisconnected"
    load = ScriptedLoad(502)
    assert load.fetch(kept_alive(), "/")[0] == "502"
    load = ScriptedLoad(TimeoutError())
    assert load.fetch(kept_alive(), "/")[0] == "TimeoutError"
    assert load.retried == 0


def test_the_longest_page_request_is_kept():
    class SlowLoad(ScriptedLoad):
        def get(self, connection, path):
            if path == "/":
                time.sleep(self.delays.pop(0))
            return super().get(connection, path)

    load = SlowLoad(200, 200, 200, 200)
    load.delays = [0.05, 0.2]
    load.request_limit = 4  # two pages, each with its one asset
    load.client()
    assert load.total == 2 and load.assets == 2
    assert 0.2 <= load.longest < 1.0
