"""``python -m marathon_ctl``."""

from marathon_ctl.cli import main

main()
