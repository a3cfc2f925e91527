"""Readers for separation benchmarks on the user's disk: each returns a list of
:class:`~speechsep.data.readers.folder.MixtureItem` after checking the layout, and names the first
missing path when it is not there."""

from speechsep.data.readers.folder import MixtureItem, folder_items, require, scan_items
from speechsep.data.readers.librimix import librimix_items
from speechsep.data.readers.wham import wham_items
from speechsep.data.readers.whamr import whamr_items

__all__ = ["MixtureItem", "folder_items", "require", "scan_items", "wham_items", "whamr_items", "librimix_items"]
