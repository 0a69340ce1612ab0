"""User errors: one line on stderr and a non-zero exit, no traceback; programming errors keep it.

The rule the ``vidgen`` command follows:

- a :class:`VidgenUserError` is a user error wherever it is raised;
- a ``ValueError`` or an ``OSError`` (missing file, not a folder, no permission, full disk)
  raised *before the first batch* — while the command line and configs are parsed, the
  config's classes built, the data and model set up, the checkpoint loaded, the run folder
  made — is a user error: vidgen's messages there name the setting and the fix;
- anything else, and anything raised once batches run, is a programming error and shows its
  traceback.

``vidgen --debug ...`` (or ``VIDGEN_DEBUG=1``) shows the traceback of user errors too.
"""

from __future__ import annotations

SETUP_ERRORS = (ValueError, OSError)
"""Exception types that are user errors when raised before the first batch (the CLI learns
when it starts from :class:`~vidgen.callbacks.FirstBatch`)."""


class VidgenUserError(Exception):
    """A mistake in a config, a path or a command line; the message names the fix."""


def root_cause(err: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``err`` (jsonargparse wraps a class's own error)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def describe(err: BaseException) -> str:
    """One line for the user: an ``OSError``'s path and reason, else the message."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def as_user_error(err: BaseException) -> VidgenUserError | None:
    """``err`` as a :class:`VidgenUserError` when its root cause is a setup error, else None."""
    root = root_cause(err)
    if isinstance(root, VidgenUserError):
        return root
    if isinstance(root, SETUP_ERRORS):
        return VidgenUserError(describe(root))
    return None


class NonFiniteLossError(VidgenUserError):
    """The training loss became NaN or infinite (raised before its backward pass)."""
