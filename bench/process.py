"""Child processes: the one way this project starts one, waits for it, and stops it.

:func:`start` runs a command with stdin closed and its stdout and stderr in a file (the first
line is the command, ``$ ...``, so the file says how to re-run it); given a readiness check
(a callable, :func:`line_with` or :func:`url_answers`) it returns only once the child is
ready, and if the child exits first or is not ready in time, it is stopped and
:class:`ChildError` says so in one line, with the last line of its output.
:func:`run_to_completion` is ``start`` + ``wait`` + ``stop``. A :class:`Child` is a context
manager: leaving the ``with`` stops it.

**Signal policy** (:meth:`Child.stop`, the only place a child is stopped):

1. list the child's descendants (psutil, by PID), while they still have a parent to find;
2. if the child is still running: SIGINT, then wait up to ``grace_s`` (default 15 s). Every
   command started here stops cleanly on SIGINT (``handler.serve`` drains, then stops its
   environments; Locust and our CLIs write what they have and exit; moto and the truth
   server close their sockets). Still running after the grace (a child that ignores SIGINT
   itself): SIGKILL, and wait;
3. every listed descendant gets ``LEFTOVER_WAIT_S`` (5 s) to exit on its own; any still alive
   then is SIGKILLed by PID and reaped, and returned, so that a caller can assert that none
   outlived the child.

A job a shell starts in the background (``nohup ... &``, ``&`` in a script) starts with SIGINT
ignored, and an ignored signal stays ignored across ``fork`` and ``exec`` ("signals set to be
ignored remain ignored", POSIX ``exec``; Python then installs no KeyboardInterrupt handler).
So when this process ignores SIGINT, every child gets SIGINT's default action back before it
execs (:func:`sigint_default_for_children`) and stops on step 2 as it would in the foreground.

Nothing is signalled by name or by process group; calling ``stop`` again does nothing. The
emulator (:func:`start_emulator`, :func:`running_emulator`) is a child like any other, ready
once it has printed its ``log:`` line. A caller that tests how a child handles a signal sends
it itself (``child.process.send_signal``) and then lets ``stop`` clean up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.results import PROJECT_ROOT

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
LEFTOVER_WAIT_S = 5.0
POLL_S = 0.05


class ChildError(RuntimeError):
    """A child did not start, did not become ready or did not finish in time; one line."""


class EmulatorError(ChildError):
    """The emulator did not start; the message says why in one line."""


Ready = Callable[["Child"], object]
"""A readiness check: called every 50 ms with the child; a truthy result means ready (and is
kept as ``Child.ready``), a falsy one not yet."""


@dataclass
class Child:
    """A running (or finished) child process, its output file and what its readiness check said."""

    process: subprocess.Popen
    name: str
    output: Path
    stderr: Path | None = None  # None: stderr is in ``output``
    ready: object = None
    _known: dict[int, psutil.Process] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def text(self) -> str:
        """The child's output so far, without the ``$ command`` line."""
        text = _read(self.output)
        return text.split("\n", 1)[1] if text.startswith("$ ") else text

    def tail(self) -> str:
        """The last non-empty line of stderr, else of the output (for one-line errors)."""
        for text in (_read(self.stderr) if self.stderr else "", self.text()):
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1].strip()
        return "(no output)"

    def descendants(self) -> list[psutil.Process]:
        """Every process below the child, now (empty once the child has exited)."""
        try:
            found = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        for process in found:
            self._known.setdefault(process.pid, process)
        return found

    def wait(self, timeout_s: float) -> int:
        """The exit code; :class:`ChildError` if it is still running after ``timeout_s`` (it is
        left running: the ``with`` or ``finally`` that owns it stops it)."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise ChildError(
                f"{self.name}: did not finish within {timeout_s:g} s (output: {self.output})"
            ) from None

    def stop(self, grace_s: float = STOP_GRACE_S) -> list[psutil.Process]:
        """The signal policy (module docstring); returns the descendants that outlived the
        child and had to be killed. Safe to call again."""
        self.descendants()  # remember them while the child is their parent
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        known, self._known = list(self._known.values()), {}
        _gone, alive = psutil.wait_procs(known, timeout=LEFTOVER_WAIT_S if known else 0)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=5)
        return alive

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sigint_default() -> None:  # pragma: no cover - runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def sigint_default_for_children() -> Iterator[Callable[[], None] | None]:
    """Around a spawn: children get SIGINT's default action even if this process ignores it.

    Not ignored: nothing to do (yields None). Ignored, in the main thread: SIGINT is caught
    (``default_int_handler``) for the spawn, and a caught signal is reset to its default by
    ``exec`` (POSIX), so the child starts as from a terminal, at vfork's speed (yields None;
    a SIGINT meanwhile would raise KeyboardInterrupt here, as in the foreground). In another
    thread, where handlers cannot be set: yields a ``preexec_fn`` that resets it in the child
    (a fork instead of a vfork: ~8 ms a spawn on a loaded 2-core host)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield None
    elif threading.current_thread() is not threading.main_thread():
        yield _sigint_default
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield None
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def start(
    command: Sequence[str],
    output: Path,
    *,
    name: str | None = None,
    ready: Ready | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    cwd: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
    stderr: Path | None = None,
    error: type[ChildError] = ChildError,
) -> Child:
    """Start ``command`` (stdin closed, stdout and stderr into ``output``, or stderr into
    ``stderr`` when given; ``env`` is added to this process's environment). With ``ready``,
    return once it says so, or stop the child and raise ``error``."""
    command = [str(part) for part in command]
    name = name or (command[2] if command[1:2] == ["-m"] else Path(command[0]).name)
    output.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        sink = files.enter_context(open(output, "w", encoding="utf-8"))
        sink.write(f"$ {shlex.join(command)}\n")
        sink.flush()
        errors = (
            subprocess.STDOUT if stderr is None else files.enter_context(open(stderr, "w", encoding="utf-8"))
        )
        with sigint_default_for_children() as preexec:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=sink,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                env=None if env is None else {**os.environ, **env},
                start_new_session=new_session,
                preexec_fn=preexec,
            )
    child = Child(process, name, output, stderr)
    if ready is None:
        return child
    try:
        child.ready = _wait_ready(child, ready, ready_timeout_s, error)
    except BaseException:
        child.stop()
        raise
    return child


def run_to_completion(
    command: Sequence[str],
    output: Path,
    timeout_s: float,
    *,
    name: str | None = None,
    cwd: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    stderr: Path | None = None,
) -> Child:
    """Start ``command``, wait for it, and stop it by the policy whatever happens (a timeout
    raises :class:`ChildError`); returns the finished child (``returncode``, ``text()``)."""
    with start(command, output, name=name, cwd=cwd, env=env, stderr=stderr) as child:
        child.wait(timeout_s)
    return child


def _wait_ready(child: Child, ready: Ready, timeout_s: float, error: type[ChildError]) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = ready(child)
        if result:
            return result
        if child.process.poll() is not None:
            raise error(f"{child.name} exited with {child.process.returncode}: {child.tail()}")
        if time.monotonic() > deadline:
            raise error(
                f"{child.name} was not ready within {timeout_s:g} s: {child.tail()} (output: {child.output})"
            )
        time.sleep(POLL_S)


def line_with(text: str) -> Ready:
    """Ready once a line of the output contains ``text``; the check returns that line."""

    def check(child: Child) -> str | None:
        return next((line for line in child.text().splitlines() if text in line), None)

    return check


def url_answers(url: str, timeout_s: float = 2.0) -> Ready:
    """Ready once a GET of ``url`` gets any HTTP answer; the check returns ``url``."""

    def check(_child: Child) -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                response.read()
        except urllib.error.HTTPError:
            return url
        except OSError:
            return None
        return url

    return check


# The emulator (python -m handler.serve) ------------------------------------------------------

SUPERVISOR_MODULE = "handler.local.supervisor"
EMULATOR_URL = re.compile(r"^emulator: .* Lambda API on (http://\S+)$", re.MULTILINE)


@dataclass
class EmulatorProcess:
    """A ready emulator: its child process, base URL and log file."""

    child: Child
    base_url: str
    log_file: Path

    @property
    def process(self) -> subprocess.Popen:
        return self.child.process

    def url(self, function: str, query: str = "", stage: str = "staging") -> str:
        """A function's URL at the gateway, e.g. ``url("logit-lean", "G1=1&...")``."""
        return f"{self.base_url}/{stage}/{function}" + (f"?{query}" if query else "")

    def children(self) -> list[psutil.Process]:
        """Its environment processes (and anything they started), now: every descendant but
        its supervisor (``handler.local.supervisor``, which ``stop`` still waits for)."""
        return [process for process in self.child.descendants() if not _is_supervisor(process)]

    def stop(self, grace_s: float = STOP_GRACE_S) -> list[psutil.Process]:
        """The signal policy; returns what outlived the emulator (none, if it drained as it must)."""
        return self.child.stop(grace_s)


def _is_supervisor(process: psutil.Process) -> bool:
    try:
        return SUPERVISOR_MODULE in process.cmdline()
    except psutil.Error:
        return False


def _emulator_ready(child: Child) -> str | None:
    """The base URL, once the emulator has printed its ``log:`` line (its last at start-up)."""
    text = child.text()
    if not any(line.startswith("log:") for line in text.splitlines()):
        return None
    found = EMULATOR_URL.search(text)
    if found is None:
        raise EmulatorError(f"the emulator printed no 'Lambda API on' line (see {child.output})")
    return found.group(1)


def start_emulator(
    models: Path | None,
    log_file: Path,
    *extra_args: str,
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> EmulatorProcess:
    """``python -m handler.serve`` on a free loopback port, ready; its output in ``output``
    (default: ``log_file`` with the suffix ``.out``)."""
    command = [sys.executable, "-m", "handler.serve", "--port", "0", "--quiet"]
    command += ["--models", str(models)] if models is not None else []
    command += ["--log-file", str(log_file), *extra_args]
    child = start(
        command,
        output or log_file.with_suffix(".out"),
        name="the emulator",
        ready=_emulator_ready,
        ready_timeout_s=ready_timeout_s,
        env=env,
        error=EmulatorError,
    )
    return EmulatorProcess(child, str(child.ready), log_file)


@contextlib.contextmanager
def running_emulator(
    models: Path | None, log_dir: Path, *extra_args: str, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[EmulatorProcess]:
    """The emulator for the ``with`` block, logs in ``log_dir`` (``emulator.out``, ``emulator.log``)."""
    emulator = start_emulator(models, log_dir / "emulator.log", *extra_args, ready_timeout_s=ready_timeout_s)
    with emulator.child:
        yield emulator
