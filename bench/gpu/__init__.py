"""Training on a lent GPU machine: the corpus's training half packed small enough to travel with the
checkout (``pack``), unpacked there (``unpack``), one training run, and the weights brought back
(``weights``). ``train.sh`` is the one command the device runs; README.md in this folder says how."""
