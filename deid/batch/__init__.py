"""Folders at scale: walk, plan, run on local workers or a Dask cluster, resume, audit.

=============== ==========================================================================
scan.py         walking the input folder (links kept inside it, loops visited once)
manifest.py     the per-output records that make reruns resume, and nothing more
work.py         the work of one file, as a worker runs it
executors.py    a local process pool, or a Dask distributed cluster
run.py          :func:`run_batch`: the whole folder, the summary and its exit code
report.py       the progress bar and the summary table of the command line
=============== ==========================================================================
"""

from __future__ import annotations

from deid.batch.run import Summary, is_url, local_path, output_name, run_batch
from deid.batch.work import CURRENT, FAILED, NEUTRAL_MTIME, OK, Outcome

__all__ = ["CURRENT", "FAILED", "NEUTRAL_MTIME", "OK", "Outcome", "Summary", "is_url", "local_path", "output_name", "run_batch"]
