"""Kernels forked from one warm process, for the series runner on Linux.

Every notebook of the series runs in a new kernel, and each kernel used to spend about
2.5 seconds of CPU before its first cell: starting ipykernel, importing torch, matplotlib
and the kit. Thirteen notebooks paid that thirteen times, a third of the smoke series' CPU.

Here one process (the *warm process*) imports those modules once, in the notebooks' folder,
then forks a kernel for each notebook. A forked kernel is still a new process with an empty
namespace: a cell that forgot an import fails as it would in JupyterLab, and its random
generators are seeded afresh as a new process's are. Only the module cache is shared, the
way a second ``import torch`` is free. Forking is safe here because the warm process never
runs a torch operation (no OpenMP pool, no CUDA context exists to be copied) and runs no
threads of its own (numpy's OpenBLAS pool stops itself around a fork).

The runner talks to the warm process over its stdin/stdout, one JSON line each way: a
``ready`` line once its imports are done, then a reply per request: ``fork`` (a kernel
command's arguments, its environment and working folder; the reply is the new pid) and
``poll`` (the kernel's exit code once it has ended). ``WarmKernels.provisioner_class``
gives jupyter_client a provisioner that launches through it. Anything it cannot launch (a
kernel command that is not this Python's ipykernel), and every kernel after the warm process
has failed, starts the usual way.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# What every notebook's kernel imports before its first cell, in the order a kernel would.
PRELOADED = ("ipykernel.kernelapp", "torch", "titn_lite", "matplotlib.pyplot", "einops", "seaborn",
             "titn_lite.results.viz")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what ipykernel selects for plots
# The warm process's command. Its replies go out on a copy of stdout, and stdout becomes stderr
# before anything is imported, so nothing an import prints can end up in a reply.
# As in ipykernel's launcher, the folder it starts in is no import path of its own (IPython adds
# it back in each kernel, after the standard library, as in a kernel launched the usual way).
BOOTSTRAP = ("import os, sys; del sys.path[0]; replies = os.dup(1); os.dup2(2, 1); "
             "from titn_lite.classroom.warm_kernels import main; main(replies)")
LAUNCHER = ["-m", "ipykernel_launcher"]
REPLY_SECONDS = 60  # a fork or a poll takes milliseconds; a warm process this slow is stuck
READY_SECONDS = 300  # its imports, the first time (matplotlib may build its font cache)


def available() -> bool:
    """Warm kernels need ``fork`` without the caveats macOS puts on it (Linux only) and
    jupyter_client's kernel provisioners (7.0 or later)."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return False
    try:
        return importlib.util.find_spec("jupyter_client.provisioning") is not None
    except ImportError:  # no jupyter_client at all
        return False


def interpreter_of(kernel_argv: list[str]) -> list[str] | None:
    """The Python and its options (``-Xfrozen_modules=off``, as ipykernel's kernelspec adds)
    that a kernel command runs ipykernel's launcher with; None for any other command."""
    for i in range(1, len(kernel_argv) - 1):
        if kernel_argv[i:i + 2] == LAUNCHER:
            return kernel_argv[:i]
    return None


class WarmKernels:
    """The runner's handle on one warm process, run by ``interpreter`` (``interpreter_of`` the
    kernelspec's command) in ``folder`` (the notebooks', where their kernels start), whose
    kernels it forks. Once the process fails (it ended, answered nonsense or not at all),
    ``broken`` is set and the runner's kernels start the usual way."""

    def __init__(self, interpreter: list[str], folder: str | Path) -> None:
        self.interpreter, self.folder = interpreter, Path(folder)
        self.broken = False
        self._ready = False  # the warm process has said its imports are done
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # the runner's threads share one request line

    def start(self) -> None:
        """Start the warm process now: its imports overlap whatever the runner does next."""
        with self._lock:
            if self._process is None and not self.broken:
                env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", INLINE_BACKEND)}
                self._process = subprocess.Popen([*self.interpreter, "-c", BOOTSTRAP], stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE, env=env, cwd=self.folder,
                                                 start_new_session=True)

    def _request(self, **request: Any) -> dict[str, Any]:
        self.start()
        with self._lock:
            if self.broken or self._process is None:
                raise OSError("the warm kernel process has failed")
            process = self._process
            try:
                if not self._ready:
                    if self._read_line(process, READY_SECONDS) != {"ready": True}:
                        raise OSError(f"it did not finish its imports within {READY_SECONDS} s")
                    self._ready = True
                assert process.stdin is not None
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                reply = self._read_line(process, REPLY_SECONDS)
            except (OSError, ValueError) as error:  # ended, closed, or a line that is not JSON
                self._break()
                raise OSError(f"the warm kernel process failed: {error}") from error
            except BaseException:  # an interrupt mid-request would leave its reply for the next one
                self._break()
                raise
            if not isinstance(reply, dict):
                self._break()
                raise OSError("the warm kernel process did not answer")
            if "error" in reply:  # it could not fork; the kernels it runs are fine, so it is not ended
                self.broken = True
                raise OSError(f"the warm kernel process failed: {reply['error']}")
        return reply

    @staticmethod
    def _read_line(process: subprocess.Popen[bytes], seconds: float) -> Any:
        """The next JSON line from ``process``, or None if none came within ``seconds``. Each reply
        is one line written at once, and nothing is read ahead, so select sees what readline gets."""
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], seconds)
        line = process.stdout.readline() if ready else b""
        return json.loads(line) if line else None

    def _break(self) -> None:
        """Give up on the warm process (the lock held): end it; later kernels start the usual way."""
        self.broken = True
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def fork(self, cmd: list[str], env: dict[str, str], cwd: str) -> ForkedKernel:
        argv = cmd[len(self.interpreter) + len(LAUNCHER):]
        return ForkedKernel(self._request(op="fork", argv=argv, env=env, cwd=cwd)["pid"], self)

    def poll(self, pid: int) -> int | None:
        """The exit code of a kernel the warm process forked; None while it runs. After the
        warm process failed, whether the pid still exists (its exit code is lost: -1)."""
        try:
            return self._request(op="poll", pid=pid)["returncode"]
        except OSError:
            return None if _exists(pid) else -1

    def close(self) -> None:
        """End the warm process (it ends the kernels still running first, and waits for them)."""
        with self._lock:
            process, self._process = self._process, None
            self.broken = True  # a kernel still polled after this asks the system, not a new process
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.close()
            except OSError:  # it has already gone
                pass
            try:
                process.wait(timeout=REPLY_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()

    def can_launch(self, cmd: list[str]) -> bool:
        """Whether ``cmd`` starts ipykernel with the warm process's own Python and options, the
        one kernel a fork can stand in for, and the warm process still works."""
        return not self.broken and interpreter_of(cmd) == self.interpreter

    def provisioner_class(self) -> type:
        """A jupyter_client provisioner whose kernels are forks of this warm process."""
        from jupyter_client.provisioning.local_provisioner import LocalProvisioner

        warm = self

        class WarmProvisioner(LocalProvisioner):
            async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
                if warm.can_launch(cmd):
                    env = dict(kwargs.get("env") or os.environ)
                    env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's own launcher sets it
                    try:
                        self.process = warm.fork(cmd, env, str(kwargs.get("cwd") or os.getcwd()))
                    except OSError:
                        pass  # the warm process has failed: this kernel starts the usual way
                    else:
                        self.pid = self.pgid = self.process.pid  # the fork leads a session of its own
                        self.cwd = kwargs.get("cwd")
                        return self.connection_info
                return await super().launch_kernel(cmd, **kwargs)

        return WarmProvisioner


def _exists(pid: int) -> bool:
    """Whether process ``pid`` still runs: neither gone nor a zombie (an orphan's new parent
    may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class ForkedKernel:
    """What jupyter_client asks of a kernel's ``Popen``, for a kernel the warm process forked
    (its child, not the runner's: the warm process reaps it and reports its exit code)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, warm: WarmKernels) -> None:
        self.pid, self._warm, self.returncode = pid, warm, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._warm.poll(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# ---- the warm process itself (started with ``BOOTSTRAP``) ----

def _serve(replies: Any) -> dict[str, Any] | None:
    """Answer the runner's requests (read from stdin, answered on ``replies``); returns only in
    a forked kernel (its request) or at the end of the runner's input (None, after ending the
    kernels still running)."""
    ended: dict[int, int] = {}
    running: set[int] = set()

    def reap() -> None:
        for pid in list(running):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running.discard(pid)
                ended[pid] = os.waitstatus_to_exitcode(status)

    for line in sys.stdin.buffer:
        request = json.loads(line)
        reap()
        reply: dict[str, Any]
        if request["op"] == "fork":
            try:
                pid = os.fork()
            except OSError as error:  # out of memory or processes: the runner starts kernels itself
                reply = {"error": f"fork: {error}"}
            else:
                if pid == 0:
                    replies.close()
                    return request
                running.add(pid)
                reply = {"pid": pid}
        else:
            reply = {"returncode": ended.get(request["pid"])}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()
    for pid in running:  # kernels the runner abandoned: end each session, whatever it started
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:  # forked, but not yet a session of its own
            os.kill(pid, signal.SIGKILL)
    for pid in running:
        os.waitpid(pid, 0)
    return None


def _become_kernel(request: dict[str, Any]) -> None:
    """In the fork: take the kernel's session, stdin, folder and environment, seed numpy's and
    torch's generators afresh as a new process would (CPython reseeds ``random`` itself), run
    ipykernel as its launcher does, and end as a kernel ends, less the module teardown."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the runner's requests came on stdin
    os.close(devnull)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()  # a new process's generator starts from a seed of its own
    launcher = importlib.util.find_spec("ipykernel_launcher")
    # ipykernel read JPY_PARENT_PID at import, in the warm process; the kernel watches its real
    # parent, the warm process, and ends if that goes.
    argv = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
    sys.argv = [launcher.origin if launcher and launcher.origin else "ipykernel_launcher", *argv]
    from ipykernel import kernelapp

    code = 0
    try:
        kernelapp.launch_new_instance(argv=argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    # What an interpreter's exit does first: wait for the notebook's threads, run the exit
    # functions (IPython's clears the namespace, so open files are flushed and finalizers run).
    # Then skip the teardown of every module (half a second with all of PRELOADED): a fork has
    # nothing of its own in them to tear down.
    threading._shutdown()  # type: ignore[attr-defined]
    import atexit

    atexit._run_exitfuncs()  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(replies_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner ends it by closing its input
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except Exception:  # a module a kernel cannot import either: that kernel will say why
            pass
    # What the forks share is there for good: the garbage collector need not walk it again in each
    # kernel (nor, walking it, copy its memory pages into every fork).
    gc.freeze()
    replies = os.fdopen(replies_fd, "wb")
    replies.write(json.dumps({"ready": True}).encode() + b"\n")
    replies.flush()
    request = _serve(replies)
    if request is not None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _become_kernel(request)
