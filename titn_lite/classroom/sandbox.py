"""Where the grader runs a student's answer: a child process, apart from the process that
judges it.

The judge (``assignments._judge_in_child``) never runs student code. Before it computes
anything it forks one child per saved answer (``Sandbox``); the child replaces the kit's
own versions of the exercise with tripwires, then loads the answer (the only place its
code runs) and waits. A check runs in the judge exactly as it runs in a notebook, except
that each call of the answer goes to the child as a *driver*: a function of the checks'
own that calls the answer there and gathers what the check looks at. What comes back is
plain data: ``torch.load(weights_only=True)`` rebuilds nothing but tensors, numbers,
strings and containers of them, and ``_checked`` checks every value's exact type again.
So an answer that patches ``torch.allclose`` or the checks patches them in the child only,
a tensor subclass or an ``int`` subclass that changes how values compare is refused by
name, and a call that reaches a tripwire ends the child with an exit status that names
what it called, whatever the answer does to profilers on the way.

What it cannot stop: an answer that reproduces the kit's source (copied by hand, read from
the installed file, or re-imported) is the same as one copied from any textbook.
"""

from __future__ import annotations

import builtins
import collections.abc
import decimal
import io
import numbers
import os
import pickle
import re
import signal
import struct
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

import torch

# A tripwire ends the child with TRIPPED + the index of what it guards (so at most 60 guards).
TRIPPED = 64
_PLAIN_SCALARS = (int, float, bool, str, type(None))
_HEADER = struct.Struct("!Q")


def call_answer(answer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The plain driver: call the answer."""
    return answer(*args, **kwargs)


def calls_the_ready_made(label: str) -> str:
    """Why an answer that reached the kit's (or torch's) version of its exercise scores 0."""
    return (f"your answer calls {label}, the ready-made version of this exercise: the exercise is to write it "
            f"yourself, so it scores 0 (the notebook compares yours with it afterwards)")


class Refused(Exception):
    """The answer cannot be judged: it sent back something that is not plain data, reached
    the kit's version of the exercise, ended its process or ran past the time limit. The
    message says which, in words for the student."""


class AnswerRaised(Exception):
    """The student's code raised an exception of type ``kind`` with this message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RemoteAnswer:
    """One of a student's functions or classes, living in a ``Sandbox``'s child. Checks call
    it through ``drive``; calling it is ``drive(call_answer, ...)``."""

    def __init__(self, sandbox: Sandbox, index: int, kind: str) -> None:
        self.sandbox, self.index, self.kind = sandbox, index, kind

    def drive(self, driver: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``driver(answer, *args, **kwargs)`` run in the child; its result as plain data."""
        return self.sandbox.request(("drive", self.index, driver, args, kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.drive(call_answer, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<the student's {self.kind}, judged in a child process>"


class Sandbox:
    """A child process that holds one saved answer (a ``cloudpickle`` file written by the
    grader's export cell) and runs drivers on it. ``forbidden`` maps a label to the callables
    an answer may not reach (``checks.forbidden_calls``); ``timeout`` is the child's budget
    in seconds for all its work, counted from the first request (the judge forks every
    sandbox at its start and then judges them one after another). Fork it before this
    process has run any tensor operation (OpenMP's threads do not survive a fork)."""

    def __init__(self, answer_path: str, forbidden: dict[str, tuple], timeout: float) -> None:
        self.labels = list(forbidden)
        read_requests, self._requests = os.pipe()
        self._replies, write_replies = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: the student's code runs here, and only here
            exit_now = os._exit  # held here, where an answer that replaces os._exit cannot reach it
            try:
                os.setpgid(0, 0)  # a group of its own: close() stops whatever the answer starts
                _keep_only(read_requests, write_replies)
                _serve(read_requests, write_replies, answer_path, forbidden)
            finally:
                exit_now(0)
        os.close(read_requests)
        os.close(write_replies)
        self.deadline: float | None = None
        self.timeout = timeout
        self.ended: str | None = None  # why the child is gone, once it is

    def manifest(self) -> dict:
        """What the saved file holds: ``error`` (why it could not be loaded, if it could
        not), ``missing`` (the name the graded cell lacked, if any),
        ``check`` (the check the notebook had, by module and name) and ``values``: per
        argument of the check, ``("answer", kind)`` for a function or class of the
        student's, or ``("data", value)`` as plain data."""
        return self.request(("manifest",))

    def request(self, message: tuple) -> Any:
        if self.ended:
            raise Refused(self.ended)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout
        try:
            payload = pickle.dumps(message)
            self._write(_HEADER.pack(len(payload)) + payload)
            reply = self._read_reply()
        except (BrokenPipeError, EOFError):
            self.ended = self._why_it_ended()
            raise Refused(self.ended) from None
        status, *rest = _load_plain(reply, self.labels)
        if status == "ok":
            return _rebuild(rest[0])
        if status == "raised":
            kind, text = rest
            if kind == "NotImplementedError":
                raise NotImplementedError(text)
            raise AnswerRaised(str(kind), str(text))
        raise Refused(str(rest[0]))  # "refused": the child named what it could not send

    def _write(self, data: bytes) -> None:
        import select

        view = memoryview(data)
        while view:
            left = (self.deadline or 0.0) - time.monotonic()
            if left <= 0 or not select.select([], [self._requests], [], left)[1]:
                self._time_is_up()
            view = view[os.write(self._requests, view[:1 << 16]):]

    def _time_is_up(self) -> None:
        self.close()
        self.ended = f"stopped after the time limit of {self.timeout:g} s (an endless loop?)"
        raise Refused(self.ended)

    def _read_reply(self) -> bytes:
        header = self._read_exactly(_HEADER.size)
        return self._read_exactly(_HEADER.unpack(header)[0])

    def _read_exactly(self, size: int) -> bytes:
        import select

        data = bytearray()
        while len(data) < size:
            left = (self.deadline or 0.0) - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                self._time_is_up()
            chunk = os.read(self._replies, min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def _why_it_ended(self) -> str:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        for _ in range(100):  # a process that is exiting closes its channel a moment before it ends
            if pid:
                break
            time.sleep(0.01)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:  # it closed its end of the channel but runs on
            self.close()
            return "your answer closed the grader's channel to it; it scores 0"
        self.close()
        code = os.waitstatus_to_exitcode(status)
        if TRIPPED <= code < TRIPPED + len(self.labels):
            return calls_the_ready_made(self.labels[code - TRIPPED])
        return f"your answer ended the grader's process (exit status {code})"

    def close(self) -> None:
        """Stop the child and whatever it started (its process group), and close the channel."""
        if self.pid:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:  # already reaped
                pass
            self.pid = 0
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._requests = self._replies = -1

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _keep_only(*kept: int) -> None:
    """In a new child: close every file descriptor but ``kept`` and the standard three (so
    nothing the answer starts can reach the judge's channels or files), and read nothing
    from standard input."""
    low = 3
    for fd in sorted(kept):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)


# ------------------------------------------------------------------ the judge's side: plain data only

def _load_plain(data: bytes, labels: list[str]) -> tuple:
    """A reply from the child, rebuilt by torch's weights-only unpickler (tensors, numbers,
    strings, containers: never a class of the student's) and checked value by value."""
    try:
        reply = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as error:  # noqa: BLE001 (whatever the bytes were)
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"a {found[1]}" if found else "something"
        raise Refused(f"your answer returned {what}, not plain tensors and numbers: return torch.Tensor, int, float, "
                      f"bool, str, or tuples, lists and dicts of them (subclasses that change how values compare "
                      f"are refused)") from None
    if not isinstance(reply, tuple) or not reply or reply[0] not in ("ok", "raised", "refused"):
        raise Refused("your answer sent the grader something it did not ask for; it scores 0")
    return (reply[0], *_checked(reply[1:]))


def _checked(value: Any) -> Any:
    """``value`` if every part of it is exactly a plain type (``Parameter`` becomes its data)."""
    kind = type(value)
    if kind is torch.Tensor:
        return value
    if kind is torch.nn.Parameter:
        return value.data
    if kind in _PLAIN_SCALARS:
        return value
    if kind in (tuple, list):
        return kind(_checked(v) for v in value)
    if kind is dict:
        return {_checked(k): _checked(v) for k, v in value.items()}
    raise Refused(f"your answer returned a {kind.__module__}.{kind.__qualname__}, not plain tensors and numbers")


def _rebuild(value: Any) -> Any:
    """Plain data with the kit's own result types (``stats.Interval``, ``stats.SeedResults``)
    made again from their fields, as ``_plain`` took them apart."""
    if isinstance(value, dict) and set(value) == {"__kit__", "fields"}:
        from titn_lite.results import stats

        kind = {"Interval": stats.Interval, "SeedResults": stats.SeedResults}.get(value["__kit__"])
        if kind is None:
            raise Refused("your answer sent the grader something it did not ask for; it scores 0")
        return kind(*_rebuild(value["fields"]))
    if type(value) in (tuple, list):
        return type(value)(_rebuild(v) for v in value)
    if type(value) is dict:
        return {k: _rebuild(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ the child's side

def _plain(value: Any) -> Any:
    """``value`` as plain data for the judge: tensors detached, numpy values as tensors and
    numbers, named tuples as tuples, the kit's result types by their fields. Anything else
    is kept as it is, so that sending it fails and ``_unsendable`` names it."""
    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        return value.detach()
    if kind in _PLAIN_SCALARS:
        return value
    module = getattr(kind, "__module__", "")
    if module == "numpy":
        import numpy

        if isinstance(value, numpy.ndarray):
            return torch.from_numpy(numpy.array(value))
        if isinstance(value, numpy.generic):
            return value.item()
    if module == "titn_lite.results.stats" and kind.__name__ == "Interval":
        return {"__kit__": "Interval", "fields": (value[0], value[1], value.level, value.method, value.family)}
    if module == "titn_lite.results.stats" and kind.__name__ == "SeedResults":
        return {"__kit__": "SeedResults", "fields": (value.label, tuple(float(v) for v in value.values))}
    if isinstance(value, tuple) and not isinstance(value, torch.Size) and (hasattr(value, "_fields") or
                                                                           module == "torch.return_types"):
        return tuple(_plain(v) for v in value)
    if kind is torch.Size:
        return tuple(value)
    if kind in (tuple, list):
        return kind(_plain(v) for v in value)
    if kind is dict or isinstance(value, collections.abc.Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (collections.abc.Iterator, range)):  # a generator of the pair, say
        return tuple(_plain(v) for v in value)
    if isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, (int, float)):
        return float(value)  # a Fraction or a Decimal
    return value


def _unsendable(value: Any) -> str | None:
    """The first part of ``value`` that is not plain data, in words; None if all is."""
    kind = type(value)
    if kind is torch.Tensor or kind in _PLAIN_SCALARS:
        return None
    if kind in (tuple, list):
        return next((found for v in value if (found := _unsendable(v))), None)
    if kind is dict:
        return next((found for item in value.items() for v in item if (found := _unsendable(v))), None)
    bases = [b.__name__ for b in kind.__mro__[1:] if b in (torch.Tensor, int, float, str, tuple, list, dict)]
    name = f"{kind.__module__}.{kind.__qualname__}"
    if bases:
        return (f"your answer returned a {name}, a subclass of {bases[0]}: the grader accepts only the plain type "
                f"(a subclass can change how values compare), so return a plain {bases[0]}")
    return (f"your answer returned a {name}, which the grader cannot read back: return torch.Tensor, int, float, "
            f"bool, str, or tuples, lists and dicts of them")


def _send(fd: int, reply: tuple) -> None:
    buffer = io.BytesIO()
    try:
        torch.save(reply, buffer)
    except Exception as error:  # noqa: BLE001 (a class of the student's that cannot be pickled here)
        buffer = io.BytesIO()
        torch.save(("refused", f"your answer returned something that could not be sent for judging "
                               f"({type(error).__name__}: {str(error)[:200]})"), buffer)
    data = buffer.getvalue()
    os.write(fd, _HEADER.pack(len(data)))
    _write_all(fd, data)


def _read(fd: int) -> tuple | None:
    header = b""
    while len(header) < _HEADER.size:
        chunk = os.read(fd, _HEADER.size - len(header))
        if not chunk:
            return None
        header += chunk
    size, data = _HEADER.unpack(header)[0], b""
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return pickle.loads(data)  # the judge's own requests


def _tripwire_code(code: int, free_variables: int):
    """The code of a function that ends the process with exit status ``code``; it has
    ``free_variables`` free variables so that it can replace a method's code that uses
    ``super()`` (the number must match, not the names)."""
    names = [f"_v{i}" for i in range(free_variables)]
    lines = ["def outer():"] + [f"    {n} = None" for n in names] + [
        "    def tripwire(*args, **kwargs):",
        f"        ({', '.join(names)}{',' if names else ''})" if names else "        pass",
        f"        __import__('os')._exit({code})",
        "    return tripwire"]
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # noqa: S102 (the kit's own text, built above)
    return namespace["outer"]().__code__


def _lay_tripwires(forbidden: dict[str, tuple]) -> None:
    """Replace each forbidden callable, in place, by a tripwire: a Python function keeps its
    object (so every reference to it trips) and gets the tripwire's code; a C function is
    replaced where the answer can find it (its module and torch's functional namespace)."""
    import torch.nn.functional as F

    for index, targets in enumerate(forbidden.values()):
        code = TRIPPED + index
        for target in targets:
            function = getattr(target, "__func__", target)
            if hasattr(function, "__code__"):
                function.__code__ = _tripwire_code(code, len(function.__code__.co_freevars))
                continue
            tripwire = types.FunctionType(_tripwire_code(code, 0), {"__builtins__": builtins})
            for namespace in (F, torch, sys.modules.get(getattr(target, "__module__", "") or "")):
                if namespace is None:
                    continue
                for name, value in list(vars(namespace).items()):
                    if value is target:
                        setattr(namespace, name, tripwire)


def _serve(requests: int, replies: int, answer_path: str, forbidden: dict[str, tuple]) -> None:
    """The child's loop: lay the tripwires, load the answer, answer requests until the pipe closes."""
    try:
        torch.set_num_threads(1)  # a forked child must not reuse the parent's thread pool
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        _lay_tripwires(forbidden)
        import cloudpickle

        try:
            with open(answer_path, "rb") as file:
                saved = cloudpickle.load(file)
            values, missing, check, error = saved["values"], saved.get("missing"), saved.get("check"), None
        except Exception as failure:  # noqa: BLE001 (a broken or foreign file, or an answer that fails to load)
            values, missing, check, error = None, None, None, f"{type(failure).__name__}: {str(failure)[:200]}"
    except BaseException:  # noqa: BLE001 (nothing of the child's may reach the judge's code)
        traceback.print_exc()
        os._exit(3)
    while (message := _read(requests)) is not None:
        if message[0] == "manifest":
            kinds = [("answer", type(v).__name__ if isinstance(v, type) else "function") if callable(v)
                     else ("data", _plain(v)) for v in (values or ())]
            reply: tuple = ("ok", {"error": error, "missing": None if missing is None else str(missing),
                                   "check": tuple(map(str, check)) if check and None not in check else None,
                                   "values": kinds})
        else:
            _, index, driver, args, kwargs = message
            try:
                reply = ("ok", _plain(driver(values[index], *args, **kwargs)))
            except BaseException as error:  # noqa: BLE001 (whatever the answer raised)
                reply = ("raised", type(error).__name__, str(error)[:300])
        if reply[0] == "ok" and (problem := _unsendable(reply[1])):
            reply = ("refused", problem)
        _send(replies, reply)
