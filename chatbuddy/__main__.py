"""``python -m chatbuddy`` runs the CLI, the same as the ``chatbuddy`` script."""

from chatbuddy.cli.main import main

main()
