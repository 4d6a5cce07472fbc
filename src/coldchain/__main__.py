"""``python -m coldchain``: the same as the ``coldchain`` command."""

from coldchain.apps.cli import main

main()
