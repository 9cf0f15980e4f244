"""Folders at scale: walk, plan, run on local workers or a Dask cluster, resume, audit.

=============== ==========================================================================
storage.py      local folders or prefixes in object stores (fsspec URLs): stage, upload, list
scan.py         walking the input folder (links inside it, or all with --follow-links; loops once)
manifest.py     the per-output records that make reruns resume, and the lock of an output folder
work.py         the work of one file, as a worker runs it
executors.py    a local process pool, or a Dask distributed cluster
lifeline.py     local workers die with the run
run.py          :func:`run_batch`: the whole folder, the summary and its exit code
report.py       the progress bar and the summary table of the command line
=============== ==========================================================================
"""

from __future__ import annotations

from deid.batch.run import Summary, output_name, run_batch
from deid.batch.storage import is_url, local_path
from deid.batch.work import CURRENT, FAILED, NEUTRAL_MTIME, OK, Outcome

__all__ = ["CURRENT", "FAILED", "NEUTRAL_MTIME", "OK", "Outcome", "Summary", "is_url", "local_path", "output_name", "run_batch"]
