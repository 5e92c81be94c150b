"""``python -m asif_platform``."""

from asif_platform.cli import main

main()
