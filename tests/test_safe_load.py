"""Reading a file never runs code: every reader refuses crafted pickles (the marker file is never created) and still
reads the real files, ours and the release's."""
import builtins
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import ensemble
from lstbase.safe_load import FileReadError, UnsafeFileError, load_pickle, load_torch
from engine.rng import rng_state, seeded_generator, set_rng_state
from preprocess import ntu
from text.bank import TextFeatureBank


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class RunsExec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f'open({str(self.marker)!r}, "w").close()',)


@pytest.fixture(params=[RunsShell, RunsExec], ids=['os.system', 'builtins.exec'])
def crafted(request, tmp_path):
    marker = tmp_path / 'marker'
    yield request.param(marker), marker
    assert not marker.exists(), 'reading the file ran its code'


def test_score_files_refuse_code(crafted, tmp_path):
    payload, _ = crafted
    path = tmp_path / 'epoch1_test_score.pkl'
    path.write_bytes(pickle.dumps({'S001C001P001R001A001': payload}))
    with pytest.raises(UnsafeFileError, match=r'epoch1_test_score.pkl: refused to read it: it asks for (posix|builtins)'):
        ensemble.load_scores(str(tmp_path), ['S001C001P001R001A001'])


def test_torch_files_refuse_code(crafted, tmp_path):
    payload, _ = crafted
    for name, content in (('weights.pt', OrderedDict(fc=payload)), ('checkpoint.pt', dict(model={}, rng=payload))):
        torch.save(content, tmp_path / name)
        with pytest.raises(UnsafeFileError, match=f'{name}: refused to read it'):
            load_torch(str(tmp_path / name))
    (tmp_path / 'plain.pt').write_bytes(pickle.dumps(dict(model=payload)))       # a plain pickle named .pt
    with pytest.raises(UnsafeFileError, match='plain.pt: refused'):
        load_torch(str(tmp_path / 'plain.pt'))


def test_text_bank_cache_refuses_code(crafted, tmp_path):
    payload, _ = crafted
    torch.save(dict(candidates=payload), tmp_path / 'bank.pt')
    with pytest.raises(UnsafeFileError):
        TextFeatureBank.load_cached(str(tmp_path / 'bank.pt'), prompts=None, width=384, log=print)


def test_preprocessing_intermediates_refuse_code(crafted, tmp_path):
    payload, _ = crafted
    (tmp_path / 'raw_00000.pkl').write_bytes(pickle.dumps([payload]))
    with pytest.raises(UnsafeFileError, match='raw_00000.pkl: refused'):
        ntu._load_pickle(str(tmp_path / 'raw_00000.pkl'))


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_release_score_files_still_load(tmp_path, protocol):
    names = [f'S001C001P00{i}R001A00{i + 1}' for i in range(3)]
    scores = np.random.default_rng(0).normal(size=(3, 60)).astype(np.float32)
    (tmp_path / 'epoch1_test_score.pkl').write_bytes(pickle.dumps(dict(zip(names, scores)), protocol=protocol))
    np.testing.assert_array_equal(ensemble.load_scores(str(tmp_path), names), scores)
    positional = {f'test_{i}': row for i, row in enumerate(scores)}                 # the release's older form
    (tmp_path / 'epoch1_test_score.pkl').write_bytes(pickle.dumps(positional, protocol=protocol))
    np.testing.assert_array_equal(ensemble.load_scores(str(tmp_path), names), scores)


def test_release_weights_and_our_files_still_load(tmp_path):
    weights = OrderedDict((f'module.l1.{k}', torch.randn(3)) for k in 'ab')        # DataParallel names, as released
    torch.save(weights, tmp_path / 'runs-65-13000.pt')
    loaded = load_torch(str(tmp_path / 'runs-65-13000.pt'))
    assert list(loaded) == list(weights) and all(torch.equal(loaded[k], weights[k]) for k in weights)
    generators = dict(shuffle=seeded_generator(1, 1))
    torch.save(dict(rng=rng_state(generators), history=[dict(val_acc=0.5)]), tmp_path / 'state.pt')
    state = torch.load(tmp_path / 'state.pt', weights_only=True)                      # no allow-list needed
    draws = [torch.rand(3, generator=generators['shuffle']), np.random.rand(3)]
    set_rng_state(state['rng'], generators)
    torch.testing.assert_close(torch.rand(3, generator=generators['shuffle']), draws[0])
    np.testing.assert_array_equal(np.random.rand(3), draws[1])


def test_states_of_earlier_versions_still_load(tmp_path):
    """Earlier training states held numpy's RNG state and numpy floats: their data, nothing else, is allowed."""
    old = dict(rng=dict(numpy=np.random.get_state()), history=[dict(train_loss=np.float64(1.5))])
    torch.save(old, tmp_path / 'checkpoint.pt')
    loaded = load_torch(str(tmp_path / 'checkpoint.pt'))
    assert loaded['history'][0]['train_loss'] == 1.5
    np.testing.assert_array_equal(loaded['rng']['numpy'][1], old['rng']['numpy'][1])


def test_damaged_files_are_named(tmp_path):
    (tmp_path / 'empty.pkl').write_bytes(b'')
    with pytest.raises(FileReadError, match='empty.pkl: not a readable score file \\(empty file\\)'):
        load_pickle(str(tmp_path / 'empty.pkl'), 'score file')
    (tmp_path / 'text.pt').write_text('hello')
    with pytest.raises(FileReadError, match='text.pt: not a readable weights file'):
        load_torch(str(tmp_path / 'text.pt'), 'weights file')
    with pytest.raises(FileNotFoundError, match='missing.pt: weights file not found'):
        load_torch(str(tmp_path / 'missing.pt'), 'weights file')
