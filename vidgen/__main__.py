"""``python -m vidgen`` is the ``vidgen`` command."""

from vidgen.cli import main

if __name__ == "__main__":
    main()
