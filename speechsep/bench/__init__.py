"""What the library reports about a model and the machine it runs on.

:mod:`~speechsep.bench.timing` (warm-up then median wall-clock), :mod:`~speechsep.bench.memory`
(peak RSS in a fresh process), :mod:`~speechsep.bench.machine` (machine description and matmul
floor), :mod:`~speechsep.bench.schema` (the results layout), :mod:`~speechsep.bench.report` and
:mod:`~speechsep.bench.plot` (BENCHMARKS.md and the RTF-vs-MACs plot from a results file).
Comparisons with other toolkits and the learning benchmark are the workshop beside the package, the
repository's ``bench/`` folder, which ``speechsep bench`` runs from a checkout.
"""
