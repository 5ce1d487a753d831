"""Conformance (spec chapter 9): the runner that judges any decoder, the golden vectors, test models.

    cli             §9.3   ``refcodec conform`` / ``python -m refcodec.conformance``: options, exit status
    harness         §9.3   a decoder command run as a subprocess: template, timeout, output file, stage folder
    judge           §9.1   pass or fail: pixels, error class (§2.6), first divergent stage (§9.4)
    random_streams  §9.3   ``--random``: fresh valid streams, shrunk when a decoder fails one
    reports         §9.3   the summary, JSON and JUnit reports
    suite           §9.3   the golden-vector format (vectors/README.md): reading and writing vector folders
    vectors         §9.3   generation of the golden vectors (``python -m refcodec.conformance.vectors``,
                           or ``python vectors/generate.py``)
    coverage        §9.3   what the golden vectors exercise (``python -m refcodec.conformance.coverage``,
                           or ``python vectors/measure_coverage.py``)
    models                 random, bound and ties test models, quality gains (spec §6)
"""


class UsageError(Exception):
    """A bad option, unreadable vectors or a decoder that cannot be started: ``refcodec conform``
    exits with status 2."""
