"""Writing files whole or not at all, and reading the small JSON files the project writes.

Every file is written under a temporary name beside it first and then renamed, so an interruption never leaves half
a file and a failed write leaves nothing behind (nor replaces a good file). Files get the permissions of the user's
umask, like any other file they create.
"""
import contextlib
import errno
import json
import os
import pickle
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def unwritable(path, exc):
    """The one-line error of a file that could not be written: its path and the system's reason."""
    return OSError(f'{path}: cannot be written ({exc.strerror or exc})')


def missing_folders(directory):
    """The folders `directory` needs made (itself and its missing parents), deepest first."""
    missing, folder = [], os.path.abspath(directory)
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


@contextlib.contextmanager
def made_folder(directory):
    """`directory`, made with its missing parents for the block. When the block raises, the folders it made are
    removed again where they are still empty: a command stopped by an error leaves no empty folder behind."""
    made = missing_folders(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise OSError(f'{directory}: the folder cannot be made ({exc.strerror or exc})') from None
    try:
        yield directory
    except BaseException:
        for folder in made:
            with contextlib.suppress(OSError):                  # not empty: something was written, it stays
                os.rmdir(folder)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed to `path` when the block ends, removed if it raises (with
    the folders made for it). The temporary name keeps the extension, which some writers go by (OpenCV,
    matplotlib's animation writers)."""
    directory = os.path.dirname(os.path.abspath(path))
    stem, extension = os.path.splitext(os.path.basename(path))
    with made_folder(directory):
        try:
            handle, tmp = tempfile.mkstemp(dir=directory, prefix=f'{stem}.tmp', suffix=extension)
        except OSError as exc:
            raise unwritable(path, exc) from None
        os.close(handle)
        try:
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())                    # mkstemp makes 0600 files
            os.replace(tmp, path)
        except OSError as exc:
            if exc.filename not in (None, tmp):                  # another file's error (copy_file's source)
                raise
            raise unwritable(path, exc) from None              # a full disk, a file size limit
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def check_writable(directory, what):
    """Make sure files can be written in `directory`, or where it does not exist yet in the folder that would hold
    it, without making anything; OSError naming `what` otherwise."""
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, f'{existing} is a file')
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise OSError(f'{what} {directory} is not writable ({exc.strerror or exc})') from None


def check_output_file(path, flag):
    """Before anything is written: `path` can become a file, not being a folder and its folder writable."""
    if os.path.isdir(path):
        raise IsADirectoryError(f'{flag} {path}: is a folder; expected the name of the file to write')
    check_writable(os.path.dirname(os.path.abspath(path)), f'{flag} {path}: its folder')


def same_file(a, b):
    """Whether `a` and `b` name one file: the same inode, through symbolic and hard links too."""
    try:
        return os.path.samefile(a, b)
    except OSError:                                             # one does not exist (yet): not the other one
        return False


def refuse_writing_inputs(outputs, inputs, advice=None):
    """Before anything is written: ValueError naming the first output that is one of the inputs. Both are (what, path)
    pairs such as ('--out', 'model.pt') and ('--weights', 'best.pt'); a path of None is passed over."""
    for output, out_path in outputs:
        for source, in_path in inputs:
            if out_path and in_path and same_file(out_path, in_path):
                raise ValueError(f'{output} {out_path} is {source} {in_path}: the command would write onto a file '
                                 f'it reads; {advice or f"choose another {output}"}')


def refuse_replacing(path, lines, what, advice):
    """Before anything is written: ValueError when `path` exists holding other lines than `lines` (blank lines and
    the spaces around a line aside), naming its first line that differs. A file of the same lines is no loss: a
    command run again rewrites it."""
    if not os.path.exists(path):
        return
    held = [line.strip() for line in read_text(path, what).splitlines() if line.strip()]
    if held == list(lines):
        return
    line = next((i for i, (old, new) in enumerate(zip(held, lines)) if old != new), min(len(held), len(lines)))
    there = repr(held[line]) if line < len(held) else 'nothing'
    given = repr(lines[line]) if line < len(lines) else 'nothing'
    raise ValueError(f'{path} exists with other {what} ({len(held)} lines; line {line + 1}: {there} there, {given} '
                     f'now) and would be replaced: {advice}')


def atomic_write(path, write, mode='wb'):
    """`write(f)` into a file opened in `mode`, which then takes the name `path`."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        write(f)


def write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode='w')


def write_json(path, content, indent=1):
    atomic_write(path, lambda f: json.dump(content, f, indent=indent), mode='w')


def copy_file(source, target):
    def copy_into(f):
        with open(source, 'rb') as src:
            shutil.copyfileobj(src, f)
    atomic_write(target, copy_into)


def save_pickle(obj, path):
    atomic_write(path, lambda f: pickle.dump(obj, f))


def save_torch(obj, path):
    import torch                                          # here: the preprocessing and the tools' readers need no torch

    def write(f):
        try:
            torch.save(obj, f)
        except RuntimeError as exc:
            # PyTorch's zip writer reports a failed write (a full disk) as a RuntimeError raised over the OSError
            raise exc.__context__ if isinstance(exc.__context__, OSError) else OSError(str(exc)) from None
    atomic_write(path, write)


def plain(value):
    """`value` as plain JSON types (lists, dicts, str, numbers), comparable after a reload."""
    return json.loads(json.dumps(value, default=str))


def not_a_regular_file(path, what):
    """For a `path` that is no regular file, the error saying what it is instead (a folder; a pipe, a socket or a
    device, which a reader would wait on), or None when nothing is there."""
    if os.path.isdir(path):
        return IsADirectoryError(f'{path}: is a folder; expected {what}')
    if os.path.exists(path):
        return OSError(f'{path}: not a regular file (a pipe, a socket or a device); expected {what}')
    return None


def read_text(path, what):
    """The text of a UTF-8 file (without a byte-order mark); one line naming the file and `what` it should be when it
    is missing, no regular file or not UTF-8 (a UTF-16 file saved by an editor)."""
    if not os.path.isfile(path):
        raise not_a_regular_file(path, what) or FileNotFoundError(f'{path}: not found; expected {what}')
    try:
        with open(path, encoding='utf-8-sig') as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f'{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected {what} saved as '
                         f'UTF-8') from None


class UnreadableFile(ValueError):
    """A JSON file cut short, or without the keys its writer puts in it."""


def read_json(path, keys=()):
    """The JSON object in `path`, which must hold `keys`; UnreadableFile (one line naming the file) otherwise."""
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f'{path}: truncated or not JSON ({exc}); expected an object with '
                             f'{", ".join(keys) or "content"}') from None
    missing = [key for key in keys if key not in content] if isinstance(content, dict) else list(keys)
    if missing:
        raise UnreadableFile(f'{path}: partial: no {", ".join(missing)}; expected an object with {", ".join(keys)}')
    return content
