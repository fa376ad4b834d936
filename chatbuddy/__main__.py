"""``python -m chatbuddy`` runs the CLI, the same as the ``chatbuddy`` script."""

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.main import main  # type: ignore[import-not-found,unused-ignore]

main()
