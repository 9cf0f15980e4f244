"""Worker processes die with the run that started them.

The local pool's workers are forked from multiprocessing's fork server, not from the run
itself, and each of them holds the server's "alive" pipe, so neither the server nor its
workers notice when the run is killed: they would finish their files unseen (racing a rerun)
and keep the caller's standard output and error open. So:

- the fork server, a direct child of the run, imports this module first and exits the
  moment the run's process is gone (it waits on a pidfd, or polls where there is none);
- every worker asks the kernel to kill it when the fork server dies (``PR_SET_PDEATHSIG``,
  Linux) and also watches the run's process itself, for systems without that signal.

The run's pid reaches the fork server through ``$DEID_RUN_PID`` (set by :func:`arm`).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time

ENV_VAR = "DEID_RUN_PID"
_PR_SET_PDEATHSIG = 1


def alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine, as far as this process can see)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(pid: int) -> None:
    """Exit this process (at once, without clean-up) as soon as process `pid` has ended."""

    def wait() -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            os._exit(1)
        except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): poll
            while alive(pid):
                time.sleep(0.2)
            os._exit(1)
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="deid-lifeline", daemon=True).start()


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent (the fork server) exits."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def bind_worker(run_pid: int) -> None:
    """Pool initializer: this worker ends with the fork server and with the run `run_pid`."""
    _die_with_parent()
    watch(run_pid)


def arm() -> int:
    """Tell the fork server (started after this call) which process is the run; returns its pid."""
    os.environ[ENV_VAR] = str(os.getpid())
    return os.getpid()


def _guard_fork_server() -> None:
    """Imported in the fork server: watch the run that started it, and only there."""
    run = os.environ.get(ENV_VAR, "")
    if run.isdigit() and int(run) == os.getppid():
        watch(int(run))


_guard_fork_server()
