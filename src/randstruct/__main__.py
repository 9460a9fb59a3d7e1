import sys

from randstruct.cli import main

sys.exit(main())
