"""Where the per-file work runs: a local process pool, a Dask distributed cluster, or this process.

Both take the same :class:`~deid.batch.work.Task` list and :class:`~deid.batch.work.Config`
and yield one :class:`~deid.batch.work.Outcome` per task, in completion order; resume, the
summary and the exit code are decided by the caller, so they behave the same on both.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from deid.batch import lifeline
from deid.batch.work import FAILED, Config, Outcome, Task, process
from deid.errors import DeidError

#: Tasks queued per worker: enough to keep workers busy between results, few enough that an
#: interrupted or crashed pool loses little.
_QUEUED_PER_WORKER = 2
#: Set when the pool's helper processes could not be started: the process then ends without
#: the interpreter's teardown, whose release of the pool's semaphores would write to a resource
#: tracker that never ran (a BrokenPipeError traceback on stderr).
helpers_failed = False


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a server that has imported numpy, scipy and numba and loaded
    # the compiled engines once (deid.batch.preload), so each starts in milliseconds, without
    # inheriting the parent's threads (rich's refresh). The server imports deid.batch.lifeline
    # first, so that it, and every worker, ends with the run (see that module).
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["deid.batch.lifeline", "deid.batch.preload"])
        return ctx
    return multiprocessing.get_context("spawn")


#: Environment variables through which store libraries find credentials, endpoints and options.
_STORE_VARIABLES = ("AWS_", "BOTO_", "FSSPEC_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "AZURE_")


def _store_settings() -> dict[str, str]:
    """The run's store variables now: the fork server's copy of the environment dates from its start."""
    return {name: value for name, value in os.environ.items() if name.startswith(_STORE_VARIABLES)}


def _start_worker(run_pid: int, store: dict[str, str]) -> None:
    """Pool initializer: die with the run, and see the stores as the run does at this moment."""
    lifeline.bind_worker(run_pid)
    for name in [n for n in os.environ if n.startswith(_STORE_VARIABLES) and n not in store]:
        del os.environ[name]
    os.environ.update(store)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now: an interrupted run must not leave them finishing files unseen."""
    for worker in list(getattr(pool, "_processes", {}).values()):
        try:
            worker.kill()
        except (OSError, ValueError):
            pass


def run_local(tasks: Sequence[Task], config: Config, *, workers: int) -> Iterator[Outcome]:
    """Process ``tasks`` in ``workers`` local processes, yielding outcomes as they finish.

    A worker that dies (killed, out of memory, a crash in native code) takes down the pool.
    The files that were running then are retried one at a time in a fresh pool, so the file
    that kills its worker again is told apart from those only caught in the crash; it is
    reported as failed and the others go on.
    """
    queue = list(reversed(tasks))
    while queue:
        suspects = yield from _drain(queue, config, width=workers, depth=workers * _QUEUED_PER_WORKER)
        while suspects:
            for task in (yield from _drain(suspects, config, width=1, depth=1)):
                yield Outcome(task.rel, task.output, FAILED, "the worker process died on this file (out of memory or a crash)")


def _cannot_start(exc: OSError | EOFError) -> DeidError:
    """The pool's helper processes (resource tracker, fork server, workers) could not be started:
    too many processes for this user, or an interpreter the user may not run."""
    global helpers_failed
    helpers_failed = True
    reason = getattr(exc, "strerror", None) or str(exc) or "a helper process ended before it answered"
    return DeidError(f"cannot start worker processes ({sys.executable}): {reason}")


def _drain(queue: list[Task], config: Config, *, width: int, depth: int) -> Iterator[Outcome]:
    """Run tasks popped from the end of ``queue`` until it is empty or the pool breaks.

    Returns (as the generator's value) the tasks that were running when the pool broke.
    """
    try:
        pool = ProcessPoolExecutor(width, mp_context=_context(), initializer=_start_worker,
                                   initargs=(lifeline.arm(), _store_settings()))
    except OSError as exc:
        raise _cannot_start(exc) from None
    running: dict[Future[Outcome], Task] = {}
    crashed: list[Task] = []
    interrupted = True
    try:
        while queue or running:
            while queue and len(running) < depth and not crashed:
                task = queue.pop()
                try:
                    running[pool.submit(process, task, config)] = task
                except (OSError, EOFError) as exc:
                    # EOFError: the fork server died before it answered (it could not start).
                    raise _cannot_start(exc) from None
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    crashed.append(task)
                    continue
                yield outcome
            if crashed and not running:
                break
        interrupted = False
    finally:
        # Interrupted (Ctrl-C, SIGTERM, a caller that stops iterating): the files in flight are
        # abandoned at once; their temporary files are removed by the next run.
        if interrupted:
            _kill_workers(pool)
        pool.shutdown(wait=not crashed and not interrupted, cancel_futures=True)
    return crashed


def run_inline(tasks: Sequence[Task], config: Config) -> Iterator[Outcome]:
    """Process ``tasks`` one at a time in this process: for a store that exists only here (``memory://``)."""
    for task in tasks:
        yield process(task, config)


def run_dask(tasks: Sequence[Task], config: Config, *, scheduler: str) -> Iterator[Outcome]:
    """Submit ``tasks`` to the Dask distributed scheduler at ``scheduler``.

    The workers must see the input and output folders under the same paths (a shared
    filesystem), or reach the store they are in with credentials of their own. The settings,
    key included, are sent once to every worker; use a ``tls://`` scheduler on an untrusted
    network.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise DeidError("--executor dask needs the dask extra: pip install 'deid-audio[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise DeidError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        shared = client.scatter(config, broadcast=True)
        futures = {client.submit(process, task, shared, pure=False): task for task in tasks}
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker fails one file, not the batch
                    yield Outcome(task.rel, task.output, FAILED, f"the Dask worker failed on this file: {type(exc).__name__}")
        finally:
            client.cancel(list(futures))
