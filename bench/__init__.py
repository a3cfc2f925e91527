"""The workshop beside the library: measuring and comparison tools that are not installed.

``speechsep/`` (installed) keeps what the library itself reports: timing helpers, peak-memory probe,
machine floor, the results schema and its markdown and plot. This folder holds what compares it with
other things or reproduces published numbers, and the results they wrote:

* the ``speechsep bench`` suite: :mod:`bench.plan`, :mod:`bench.runner`, rival toolkits (asteroid,
  ESPnet) run in a throwaway venv (:mod:`bench.anchors`, :mod:`bench.anchor_env`,
  :mod:`bench.anchor_child`), :mod:`bench.pit_compare`; results in ``results.json``, ``fragments/``
  rendered into BENCHMARKS.md;
* the learning benchmark (``speechsep bench learn``): :mod:`bench.learn`, its candidates and runs;
* one-off measuring tools, each reached through the one entry point ``python -m bench TOOL ...``
  (``python -m bench`` lists them).

``speechsep bench`` imports this package from the checkout the library was installed from
(``pip install -e .``); an installed wheel has no workshop and says so.
"""
