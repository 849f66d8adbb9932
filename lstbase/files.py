"""Writing files whole or not at all, and reading the small JSON files the project writes.

Every file is written under a temporary name beside it first and then renamed, so an interruption never leaves half
a file and a failed write leaves nothing behind (nor replaces a good file). Files get the permissions of the user's
umask, like any other file they create.
"""
import contextlib
import json
import os
import pickle
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed to `path` when the block ends, removed if it raises.
    The temporary name keeps the extension, which some writers go by (OpenCV, matplotlib's animation writers)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=f'{stem}.tmp', suffix=extension)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())                 # mkstemp makes 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    atomic_write(path, lambda f: torch.save(obj, f))


def plain(value):
    """`value` as plain JSON types (lists, dicts, str, numbers), comparable after a reload."""
    return json.loads(json.dumps(value, default=str))


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
