import sys

from edgebench.cli import main

sys.exit(int(main(sys.argv[1:])))
