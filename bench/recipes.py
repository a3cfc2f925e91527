"""Regenerate the shipped training recipes (``speechsep/recipes/<corpus>/<preset>.yaml``) from the
tables in :mod:`speechsep.train.recipes`: run it after changing a table (a test checks that the
files match the tables).

    python -m bench recipes [--root DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechsep.train.recipes import RECIPE_DIR, write_recipes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=RECIPE_DIR)
    args = parser.parse_args()
    print(f"wrote {len(write_recipes(args.root))} recipes under {args.root}")


if __name__ == "__main__":
    main()
