"""User mistakes end as one line, `error: <what, where, what was expected>`, exit status 2, no traceback.

Set LST_DEBUG=1 to see the traceback instead.
"""
import contextlib
import os
import sys

try:
    import fcntl
except ImportError:                                    # Windows: no advisory locks, no check
    fcntl = None

# What a mistake in the command line, a config, a path or a file gives: missing or unreadable files, wrong values
# (ValueError and its kinds: bad configs, description files, raw skeleton files, unsafe pickles), unknown classes.
USER_ERRORS = (OSError, ValueError, KeyError, ImportError)


def run(main, *args, **kwargs):
    """Call `main`; a user error is printed as one line and exits with status 2."""
    try:
        return main(*args, **kwargs)
    except USER_ERRORS as exc:
        if os.environ.get('LST_DEBUG'):
            raise
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        if 'Original Traceback' in message:            # raised in a DataLoader worker: its own last line says it
            message = [line for line in message.splitlines() if line.strip()][-1].split(': ', 1)[-1]
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
    except SystemExit as exc:
        if isinstance(exc.code, str):                  # sys.exit('message') in older code paths
            print(exc.code if exc.code.startswith('error:') else f'error: {exc.code}', file=sys.stderr)
            sys.exit(2)
        raise


@contextlib.contextmanager
def locked(directory, what):
    """Hold an exclusive lock on `directory` itself (no file is written) for the block, so that a second training run
    started on the same work dir stops at once instead of writing into the first one's files. The lock goes with
    the process, even when it is killed. `directory` must exist (lstbase.files.made_folder)."""
    if fcntl is None:
        yield
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OSError(f'{what} {directory} is in use by another training run; wait for it to end, '
                          f'or choose another --work-dir') from None
        yield
    finally:
        os.close(handle)
