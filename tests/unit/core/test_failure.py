"""The order in which hosts clean up when a run fails (failure.py): a host named first cleans up
before any other, whichever host fails first; the others once their operation is over."""

from __future__ import annotations

import pytest

from deploys.djangoapp.core import failure


class FakeHost:
    def __init__(self, name: str, ran: list[str]):
        self.name, self._ran = name, ran

    def run_shell_command(self, command, print_output=False, **arguments):
        self._ran.append(f"{self.name}: {command}")
        return True, None


class FakeInventory:
    def __init__(self, hosts):
        self.hosts = {host.name: host for host in hosts}

    def get_host(self, name):
        return self.hosts[name]


class FakeState:
    def __init__(self, hosts):
        self.callback_handlers, self.active_hosts, self.should_raise_failed_hosts = [], set(hosts), None
        self.inventory = FakeInventory(hosts)

    def add_callback_handler(self, handler):
        self.callback_handlers.append(handler)


@pytest.fixture
def fleet(monkeypatch):
    monkeypatch.setattr(failure, "_cleanups", {})
    monkeypatch.setattr(failure, "_first", [])
    monkeypatch.setattr(failure, "_waiting", [])
    monkeypatch.setattr(failure, "login_arguments", lambda state, host: {})
    ran: list[str] = []
    hosts = {name: FakeHost(name, ran) for name in ("web1", "web2", "worker1")}
    state = FakeState(hosts.values())
    for name, host in hosts.items():
        failure.on_failure(state, host, f"clean up {name}", first=(name == "web1"))
    return state, hosts, ran


def fail(state, host):
    """What pyinfra does when `host`'s operation fails: the host leaves the active ones, and the
    callback is told."""
    state.active_hosts.discard(host)
    failure.ReleaseFailureCleanup.operation_host_error(state, host, "op")


def test_a_host_that_fails_waits_for_the_first_hosts_cleanup_until_the_run_stops(fleet):
    state, hosts, ran = fleet
    fail(state, hosts["web2"])
    assert ran == []  # web1's operation still runs: web2 waits
    assert state.should_raise_failed_hosts(state) is True
    assert ran == ["web1: clean up web1", "web2: clean up web2", "worker1: clean up worker1"]


def test_the_first_host_failing_runs_its_cleanup_then_those_that_waited(fleet):
    state, hosts, ran = fleet
    fail(state, hosts["worker1"])
    fail(state, hosts["web1"])
    assert ran == ["web1: clean up web1", "worker1: clean up worker1"]
    fail(state, hosts["web2"])  # the first host's is over: web2 cleans up at once
    assert ran[-1] == "web2: clean up web2"
    state.should_raise_failed_hosts(state)
    assert len(ran) == 3  # each cleanup runs once


def test_without_a_first_host_each_cleans_up_as_it_fails(monkeypatch, fleet):
    state, hosts, ran = fleet
    monkeypatch.setattr(failure, "_first", [])
    fail(state, hosts["web2"])
    assert ran == ["web2: clean up web2"]
    state.should_raise_failed_hosts(state)
    assert sorted(ran[1:]) == ["web1: clean up web1", "worker1: clean up worker1"]
