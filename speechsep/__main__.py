import sys

from speechsep.cli import main

sys.exit(main())
