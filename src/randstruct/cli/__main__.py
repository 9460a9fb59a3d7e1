import sys

from randstruct.cli.main import main

sys.exit(main())
