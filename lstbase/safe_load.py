"""Reading files without running code.

A pickle can name any function to call while it is read (`os.system`, `builtins.exec`), so score files, training
states, weights and caches handed to us are read with unpicklers that accept only the types such files hold, and
refuse anything else with one line naming the file and the refused global. PyTorch files are read with
`weights_only=True`; the project writes its own files in plain types so that nothing more is needed.
"""
import os
import pickle
import re
import warnings
import zipfile

from lstbase.files import not_a_regular_file

# What score files and the preprocessing's intermediates hold: containers, numbers, strings, numpy arrays and scalars.
DATA_GLOBALS = {
    ('builtins', name) for name in
    ('dict', 'list', 'tuple', 'set', 'frozenset', 'str', 'bytes', 'bytearray', 'int', 'float', 'complex', 'bool',
     'slice', 'range')
} | {
    ('collections', 'OrderedDict'),
    ('_codecs', 'encode'),                              # bytes in protocol-2 pickles (numpy arrays from Python 2/3)
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),     # protocol 5 arrays
}


class UnsafeFileError(ValueError):
    """A file that would run code, or hold objects of a kind not expected there, when read."""


class FileReadError(ValueError):
    """A file that cannot be read: missing, empty, truncated or of another format."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path, allowed):
        super().__init__(file)
        self.path, self.allowed = path, allowed

    def find_class(self, module, name):
        if (module, name) not in self.allowed and not _numpy_dtype_class(module, name):
            raise UnsafeFileError(f'{self.path}: refused to read it: it asks for {module}.{name}, which a '
                                  f'data file has no need of (reading it could run code)')
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UnsafeFileError(f'{self.path}: refused to read it: it holds persistent references')


def _numpy_dtype_class(module, name):
    """numpy 2 pickles some dtypes by their class (numpy.dtypes.Float64DType ...): plain data types."""
    return module == 'numpy.dtypes' and re.fullmatch(r'[A-Za-z0-9]+DType', name) is not None


def load_pickle(path, what='pickle', extra_globals=()):
    """Unpickle `path` accepting only DATA_GLOBALS (and `extra_globals`, as (module, name) pairs)."""
    if not os.path.isfile(path):
        raise not_a_regular_file(path, what) or FileNotFoundError(f'{path}: {what} not found')
    with open(path, 'rb') as f:
        try:
            return _RestrictedUnpickler(f, path, DATA_GLOBALS | set(extra_globals)).load()
        except UnsafeFileError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                ImportError, KeyError, MemoryError) as exc:
            size = os.path.getsize(path)
            detail = 'empty file' if size == 0 else f'{type(exc).__name__}: {exc}'
            raise FileReadError(f'{path}: not a readable {what} ({detail})') from None


def is_torchscript(path):
    """A TorchScript archive: a zip holding code (and its constants), which loading it with torch.jit.load runs."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any('/code/' in name or name.endswith('/constants.pkl') for name in archive.namelist())


def load_torch(path, what='PyTorch file'):
    """torch.load with weights_only=True, one clear line for a file that is unsafe, damaged or of another kind.

    Training states written by earlier versions hold numpy's RNG state and numpy scalars: numpy's array and scalar
    reconstruction (data only) is allowed for them, nothing else.
    """
    import numpy as np
    import torch
    if not os.path.isfile(path):
        raise not_a_regular_file(path, what) or FileNotFoundError(f'{path}: {what} not found')
    if is_torchscript(path):
        raise UnsafeFileError(f'{path}: refused to read it as a {what}: a TorchScript program, which loading runs '
                              f'(tools/export.py writes them; give the training weights, a .pt state dict)')
    multiarray = getattr(np, '_core', getattr(np, 'core')).multiarray
    numpy_globals = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    numpy_globals += [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float32, np.float64)]
    try:
        with torch.serialization.safe_globals(numpy_globals), warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)            # "Detected pickle protocol 4": plain pickles
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r'GLOBAL ([\w.]+)', str(exc))
        if not refused and not _is_pickle(path):                    # damaged, or a file of another format
            raise FileReadError(f'{path}: not a readable {what} (neither a PyTorch archive nor a pickle)') from None
        needs = f'it asks for {refused.group(1)}' if refused else 'it holds more than tensors and plain data'
        raise UnsafeFileError(f'{path}: refused to read it as a {what}: {needs} (reading it could run code)') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, TypeError,
            AttributeError) as exc:
        detail = 'empty file' if os.path.getsize(path) == 0 else _first_line(exc)
        raise FileReadError(f'{path}: not a readable {what} ({detail})') from None


def _is_pickle(path):
    with open(path, 'rb') as f:
        return f.read(1) == b'\x80'                                # the PROTO opcode every pickle since protocol 2 starts with


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0]}' if text else type(exc).__name__
