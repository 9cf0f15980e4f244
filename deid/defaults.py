"""Defaults shared by the library and the command line, in a module that imports nothing, so that
``deid --help`` stays fast."""

#: Files longer than this many seconds are processed in blocks of about this length
#: (:mod:`deid.engine`).
BLOCK_SECONDS = 30.0
#: The shortest block length that may be asked for: a block needs room for the quiet point
#: that is searched within 2 s of each cut, and for the context of every step on both sides.
MIN_BLOCK_SECONDS = 10.0
#: The lowest sample rate deid reads or processes, in Hz. Narrowband telephone speech is 8 kHz,
#: the lowest rate speech is recorded at; below it WORLD's aperiodicity analysis (D4C, used by
#: the pseudo-voice and VTLN steps) reads and writes its spectra beyond their ends, up to
#: 7.9 kHz, and aborts the process (measured at 4 and 7 kHz).
MIN_SAMPLE_RATE = 8000
