"""``python -m vidgen`` is the ``vidgen`` command."""

from vidgen.cli import entry_point

if __name__ == "__main__":
    entry_point()
