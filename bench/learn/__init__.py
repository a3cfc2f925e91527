"""The learning benchmark: which models and recipes learn the most separation per CPU hour.

:mod:`bench.learn.candidates` reads the candidates (``candidates.yaml`` here), :mod:`bench.learn.run`
trains and scores them, :mod:`bench.learn.state` keeps each one's resumable progress and
:mod:`bench.learn.report` ranks them. Run it as ``speechsep bench learn``; the dated folders here
hold past runs.
"""
