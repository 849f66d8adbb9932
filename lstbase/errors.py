"""User mistakes end as one line, `error: <what, where, what was expected>`, exit status 2, no traceback.

Set LST_DEBUG=1 to see the traceback instead.
"""
import contextlib
import importlib
import importlib.metadata
import importlib.util
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


class NotInstalled(ImportError):
    """A package of an optional extra is not installed; the message says how to install it."""


def import_optional(module, needed_for, fix):
    """`module` of an optional extra (OpenCV, MediaPipe, onnx, onnxruntime), imported. Not installed: NotInstalled;
    installed but failing to import, whatever it raises: `extra_failed`. Both one line ending in `fix`."""
    try:
        return importlib.import_module(module)
    except Exception as exc:
        package = module.split('.')[0]
        if importlib.util.find_spec(package) is None:
            raise NotInstalled(f'{needed_for} needs {package}, which is not installed: {fix}') from None
        raise extra_failed(needed_for, package, exc, fix) from exc


def extra_failed(needed_for, package, exc, fix):
    """The one-line ImportError of an installed extra that fails, on import or as it starts (under protobuf 7
    MediaPipe's pose raises AttributeError building its graph), naming the failure and the protobuf installed."""
    failure = (str(exc).strip().splitlines() or [''])[-1]
    return ImportError(f'{needed_for}: {package} is installed but fails ({type(exc).__name__}: {failure}; protobuf '
                       f'{installed_version("protobuf")} is installed): {fix}')


def installed_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return 'none'


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
