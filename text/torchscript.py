"""The tensors of a TorchScript archive, read without running any of it.

A TorchScript file is a program: `torch.jit.load` builds its objects (whose `__setstate__` may do anything) and its
forward runs whatever code it holds. OpenAI publishes CLIP's weights as such archives. Their tensors and names are
plain data inside the zip: `<prefix>/data.pkl` pickles the module tree (each module an object of a `__torch__.*`
class whose state is a dict of attribute names to values), tensors are persistent references to `<prefix>/data/<key>`
files. Here that pickle is read with an unpickler that makes every `__torch__` class an inert record of its
attributes, rebuilds tensors from the data files, and refuses every other global; no code of the archive is compiled
or called.
"""
import pickle
import zipfile
from collections import OrderedDict

import torch

STORAGE_DTYPES = {'FloatStorage': torch.float32, 'HalfStorage': torch.float16, 'DoubleStorage': torch.float64,
                  'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
                  'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8,
                  'BoolStorage': torch.bool}


class RefusedArchive(ValueError):
    """An archive whose pickle asks for something a module tree of tensors has no need of."""


class _Record:
    """What every `__torch__` class of the archive becomes: its attributes, nothing that runs."""

    def __setstate__(self, state):
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if module == '__torch__' or module.startswith('__torch__.'):
            return _Record
        if module == 'torch._utils' and name == '_rebuild_tensor_v2':
            return _rebuild_tensor
        if module == 'torch' and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) == ('collections', 'OrderedDict'):
            return OrderedDict
        raise RefusedArchive(f'{self.path}: refused to read it: its module tree asks for {module}.{name}, which a '
                             f'TorchScript archive of weights has no need of')

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
            raise RefusedArchive(f'{self.path}: refused to read it: an unknown persistent reference {pid!r:.60}')
        _, dtype, key, _, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise RefusedArchive(f'{self.path}: refused to read it: a storage of type {dtype!r:.60}')
        data = self.archive.read(f'{self.prefix}/data/{key}')
        storage = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
        if storage.numel() < numel:
            raise ValueError(f'{self.path}: tensor data {key} holds {storage.numel()} values, expected {numel}')
        return storage


def read_state_dict(path):
    """{name: tensor} of every tensor attribute of the archive's modules (its parameters and buffers), as
    `torch.jit.load(path).state_dict()` gives them, without running the archive."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
        if not pickles:
            raise ValueError(f'{path}: not a TorchScript archive (no <name>/data.pkl)')
        prefix = pickles[0].split('/')[0]
        with archive.open(pickles[0]) as f:
            try:
                root = _Unpickler(f, archive, prefix, path).load()
            except RefusedArchive:
                raise
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
                raise ValueError(f'{path}: not a readable TorchScript archive ({type(exc).__name__}: {exc})') from None
    state = OrderedDict()
    _collect(root, '', state)
    return state


def _collect(node, prefix, state):
    for name, value in getattr(node, 'attributes', {}).items():
        if isinstance(value, torch.Tensor):
            state[prefix + name] = value
        elif isinstance(value, _Record):
            _collect(value, f'{prefix}{name}.', state)
