"""``python -m gradcheck``: the same as the ``gradcheck`` command."""

from gradcheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
