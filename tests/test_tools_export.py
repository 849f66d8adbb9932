"""tools/export.py: the inference network equals the model's logits; exported files equal it (checked by the
command itself, and here again on other shapes); predict runs them; ONNX without its packages says so."""
import importlib.util
import shutil
import sys

import numpy as np
import pytest
import torch

from tools_helpers import UCLA_GRAPH, ntu_config, seeded_weights, ucla_config

import export  # noqa: E402  (tools/ is on the path through tools_helpers)
import predict  # noqa: E402
import trained_model  # noqa: E402

LST = ('model.ctrgcn.Model_lst_4part', dict(num_class=5, k=8, head=['all-MiniLM-L6-v2']))


@pytest.fixture(scope='module')
def lst(tmp_path_factory):
    base = tmp_path_factory.mktemp('export')
    config = ntu_config(base / 'lst.yaml', str(base / 'unused.npz'), *LST)
    return base, config, seeded_weights(config, base / 'lst.pt')


@pytest.fixture(scope='module')
def torchscript(lst):
    """The LST model exported by the command's code: (file, max difference, logit scale) of its own check."""
    base, config, weights = lst
    out = str(base / 'lst.ts.pt')
    return (out, *export.export(config, weights, 'torchscript', out))


def logits(network, x):
    with torch.no_grad():
        return network(x)


def test_inference_network_is_the_models_logits_without_the_heads(lst):
    _, config, weights = lst
    model = trained_model.build_model(trained_model.read_config(config), config)
    model.load_state_dict(torch.load(weights))
    network = model.eval().inference_network()
    x = torch.randn(3, 3, 20, 25, 2)
    assert torch.equal(logits(network, x), logits(model, x)[0])
    assert torch.equal(logits(model.logits, x), logits(model, x)[0])
    assert not [k for k in network.state_dict() if 'head' in k or 'part' in k or 'logit_scale' in k]
    assert set(network.state_dict()) < set(model.state_dict())                   # the model's own names
    assert hasattr(model, 'part_list')                                     # the model itself is unchanged
    ucla = trained_model.build_model(dict(model='model.ctrgcn.Model', model_args=dict(UCLA_GRAPH, num_class=10)),
                                     'c.yaml').eval()
    y = torch.randn(2, 3, 52, 20, 1)
    assert torch.equal(logits(ucla.inference_network(), y), logits(ucla, y))


@pytest.mark.slow
def test_torchscript_equals_eager_and_predict_runs_it(lst, torchscript):
    _, config, weights = lst
    out, difference, scale = torchscript
    assert difference <= export.TOLERANCE * max(1, scale)
    loaded = torch.jit.load(out)
    assert not [k for k in loaded.state_dict() if 'head' in k or 'part_list' in k]
    _, model = export.eager_model(config, weights)
    x = torch.randn(4, 3, 37, 25, 2)                                        # batch and frames not seen before
    eager = logits(model.logits, x)
    assert (logits(loaded, x) - eager).abs().max() <= 1e-5 * max(1, eager.abs().max())
    assert predict_scores(config, out) == pytest.approx(predict_scores(config, weights), rel=1e-5, abs=1e-5)


def predict_scores(config, weights):
    """The scores predict gives a generated NW-UCLA-free input: a random .npy sample C,T,V,M."""
    keypoint = np.random.default_rng(0).normal(size=(2, 40, 25, 3))
    sample = trained_model.Sample('x.npy', dict(frame_dir='x', total_frames=40, keypoint=keypoint))
    stream = trained_model.Stream(config, weights, trust_code=True)
    return stream.logits([sample]).ravel().tolist()


@pytest.mark.slow
def test_the_check_fails_when_the_export_differs(lst, torchscript, monkeypatch):
    base, config, weights = lst
    loader = trained_model.load_network
    monkeypatch.setattr(trained_model, 'load_network', lambda *a, **k: (lambda x: loader(*a, **k)(x) * 1.001))
    shutil.copy(torchscript[0], base / 'earlier.pt')
    earlier = (base / 'earlier.pt').read_bytes()
    with pytest.raises(trained_model.UsageError, match='does not reproduce the eager model.*nothing written'):
        export.main(['--config', config, '--weights', weights, '--format', 'torchscript',
                     '--out', str(base / 'earlier.pt')])
    assert (base / 'earlier.pt').read_bytes() == earlier                           # checked before it is replaced
    assert not list(base.glob('earlier.tmp*'))


@pytest.mark.parametrize('fmt, out', [('torchscript', 'model.onnx'), ('onnx', 'model.pt')])
def test_the_file_name_must_fit_the_format(fmt, out, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export.main(['--config', 'c.yaml', '--weights', 'w.pt', '--format', fmt, '--out', str(tmp_path / out)])
    assert stop.value.code == 2 and f'--out {tmp_path / out}: ' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_onnx_equals_eager_on_nw_ucla_shapes(tmp_path, capsys):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    config = ucla_config(tmp_path / 'u.yaml', str(tmp_path), 'model.ctrgcn.Model_lst_4part_ucla',
                         dict(num_class=10, head=['all-MiniLM-L6-v2'], k=6))
    weights = seeded_weights(config, tmp_path / 'u.pt')
    assert export.main(['--config', config, '--weights', weights, '--format', 'onnx',
                        '--out', str(tmp_path / 'u.onnx')]) == 0
    assert 'check OK' in capsys.readouterr().out
    onnx_net = trained_model.load_network({}, config, str(tmp_path / 'u.onnx'))
    _, model = export.eager_model(config, weights)
    x = torch.randn(5, 3, 52, 20, 1)
    eager = logits(model.logits, x)
    assert (onnx_net(x) - eager).abs().max() <= 1e-5 * max(1, eager.abs().max())


def test_onnx_without_its_packages(lst, monkeypatch, capsys):
    base, config, weights = lst
    onnx_installed = importlib.util.find_spec('onnx') is not None
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(ImportError, match='--format onnx needs onnx, which is not installed: run `make install-export`'):
        export.main(['--config', config, '--weights', weights, '--format', 'onnx', '--out', str(base / 'x.onnx')])
    if not onnx_installed:
        pytest.skip('onnx is not installed: the export without onnxruntime cannot be tried')
    monkeypatch.delitem(sys.modules, 'onnx')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    assert export.main(['--config', config, '--weights', weights, '--format', 'onnx', '--out',
                        str(base / 'x.onnx')]) == 0
    assert 'onnxruntime is not installed: the ONNX file was written but NOT checked' in capsys.readouterr().out
    with pytest.raises(ImportError, match='needs onnxruntime, which is not installed'):
        predict.main(['--config', config, '--weights', str(base / 'x.onnx'), '--input', str(base)])


@pytest.mark.slow
def test_exporting_an_exported_model_is_refused(lst, torchscript):
    base, config, _ = lst
    with pytest.raises(trained_model.UsageError, match='an exported model; export from the training weights'):
        export.main(['--config', config, '--weights', torchscript[0], '--format', 'torchscript',
                     '--out', str(base / 'twice.pt')])
