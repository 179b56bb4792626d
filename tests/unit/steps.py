"""Deploy code run without a host: the pyinfra operations a deploy function adds are recorded
(in order, with their arguments) instead of run, and the facts it reads are given. Unit tests
check with it which steps a deploy asks of a host and with what; the e2e tests show what the host
then does with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any, Callable


@dataclass
class Step:
    """One operation added: what was called ("files.directory", "host_files"), with what."""

    operation: str
    args: tuple
    kwargs: dict
    recorder: "Steps" = field(repr=False)

    @property
    def name(self) -> str:
        return self.kwargs.get("name", "")

    def did_change(self) -> bool:
        """Whether the operation "changed" the host: as the test said (Steps.changed)."""
        return self.name in self.recorder.changed

    def runs(self) -> bool:
        """Whether pyinfra would run it: its `_if` (a callable or a list of them) holds."""
        condition = self.kwargs.get("_if")
        if condition is None:
            return True
        conditions = condition if isinstance(condition, list) else [condition]
        return all(check() for check in conditions)


class FakeHost:
    """pyinfra's `host` for deploy code: a name, given facts (fact class -> value, or a function
    of the fact's arguments), and what it was told (noop)."""

    def __init__(self, name: str, facts: dict):
        self.name = name
        self.print_prefix = f"[{name}] "
        self.facts = facts
        self.asked: list[tuple[type, dict]] = []
        self.noops: list[str] = []
        self.data = SimpleNamespace()

    def get_fact(self, fact, **arguments):
        self.asked.append((fact, arguments))
        value = self.facts[fact]
        return value(**arguments) if callable(value) else value

    def noop(self, text: str) -> None:
        self.noops.append(text)

    def loop(self, items):
        """pyinfra's host.loop: the items, in order (it also numbers the operations added meanwhile)."""
        return iter(items)


class Steps(list):
    """The steps recorded, in order. `changed`: the names of the steps that are to report a change."""

    def __init__(self, monkeypatch):
        super().__init__()
        self.monkeypatch = monkeypatch
        self.changed: set[str] = set()

    def operation(self, label: str) -> Callable[..., Step]:
        def add(*args, **kwargs) -> Step:
            step = Step(label, args, kwargs, self)
            self.append(step)
            return step
        return add

    def replace(self, module, *names: str) -> "Steps":
        """Record calls to `names` in `module` instead of making them: a function ("absent") or a
        module of operations ("files": files.directory is recorded as "files.directory")."""
        for name in names:
            original = getattr(module, name)
            recorder = (_OperationsModule(self, name) if isinstance(original, ModuleType)
                        else self.operation(name))
            self.monkeypatch.setattr(module, name, recorder)
        return self

    def host(self, module, name: str = "web1", facts: dict | None = None) -> FakeHost:
        fake = FakeHost(name, facts or {})
        self.monkeypatch.setattr(module, "host", fake)
        return fake

    def of(self, operation: str) -> list[Step]:
        return [step for step in self if step.operation == operation]

    def calls(self) -> list[tuple[str, str]]:
        """(operation, name) of each step, in order."""
        return [(step.operation, step.name) for step in self]


class _OperationsModule:
    def __init__(self, steps: Steps, prefix: str):
        self._steps, self._prefix = steps, prefix

    def __getattr__(self, name: str) -> Any:
        return self._steps.operation(f"{self._prefix}.{name}")
