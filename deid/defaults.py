"""Defaults shared by the library and the command line, in a module that imports nothing, so that
``deid --help`` stays fast."""

#: Files longer than this many seconds are processed in blocks of about this length
#: (:mod:`deid.engine`).
BLOCK_SECONDS = 30.0
#: The shortest block length the engine takes (:func:`deid.anonymize_file`): each cut is placed
#: at the quietest 20 ms frame within a quarter block of its nominal place, which needs frames
#: to choose from (at 0.02 s there are none). The command line asks for 10 s or more.
MIN_BLOCK_SECONDS = 1.0
#: The lowest sample rate deid reads or processes, in Hz. Narrowband telephone speech is 8 kHz,
#: the lowest rate speech is recorded at; below it WORLD's aperiodicity analysis (D4C, used by
#: the pseudo-voice and VTLN steps) reads and writes its spectra beyond their ends, up to
#: 7.9 kHz, and aborts the process (measured at 4 and 7 kHz).
MIN_SAMPLE_RATE = 8000
