"""Defaults shared by the library and the command line, in a module that imports nothing, so that
``deid --help`` stays fast."""

#: Files longer than this many seconds are processed in blocks of about this length
#: (:mod:`deid.engine`).
BLOCK_SECONDS = 30.0
