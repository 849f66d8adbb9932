"""The backbone's merged and folded computation equals the released one, layer by layer.

`released_logits` runs the released computation on a model's own modules, each called as the release calls it
(per-subset CTRGC, one nn.Sequential per temporal branch, BatchNorm modules after their convolutions). Our forward
passes must give its outputs, gradients and BatchNorm running statistics in training, and its logits in eval mode,
where the norms are folded into the convolutions. With the released code itself (a clone of Uason-Chen/CTR-GCN,
$LST_REFERENCE_DIR or ../CTR-GCN beside the checkout), its checkpoints load strictly and give its logits.
"""
import copy
import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F

import graph.ntu_rgb_d  # noqa: F401  (the released Model imports its graph by name)
import graph.ucla  # noqa: F401
from model import ctrgcn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NTU = dict(num_class=60, num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph')
UCLA = dict(num_class=10, num_point=20, num_person=1, graph='graph.ucla.Graph')
SHAPES = {'ntu': NTU, 'ucla': UCLA}


def sample(kw, n=3, t=16, dtype=torch.float32):
    return torch.randn(n, 3, t, kw['num_point'], kw['num_person'], dtype=dtype)


def randomised(model, shape):
    """Weights as training leaves them: alpha and the adjacencies moved, biases and BatchNorm scales set, and the
    norms' running statistics those of a batch (so that eval-mode activations keep their scale)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.Conv2d)):
                module.bias.normal_(0, 0.1)
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.mul_(torch.empty_like(module.weight).uniform_(0.5, 1.5))
                module.momentum = 1.0
            if hasattr(module, 'alpha'):
                module.alpha.fill_(0.6)
                module.PA.add_(torch.randn_like(module.PA) * 0.1)
                module.bn.weight.uniform_(0.5, 1.5)
        model.train()(sample(SHAPES[shape], n=8, dtype=next(model.parameters()).dtype))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.1
                module.num_batches_tracked.zero_()
    return model


def released_temporal(layer, x):
    return layer.bn(layer.conv(x))


def released_tcn(tcn, x):
    outs = []
    for branch in tcn.branches:
        for layer in branch:
            x_in = x if layer is branch[0] else out
            out = released_temporal(layer, x_in) if isinstance(layer, ctrgcn.TemporalConv) else layer(x_in)
        outs.append(out)
    return torch.cat(outs, 1) + tcn.residual(x)


def released_gcn(gcn, x):
    A = gcn.PA if gcn.adaptive else gcn.A
    y = sum(conv(x, A[i], gcn.alpha) for i, conv in enumerate(gcn.convs))
    return F.relu(gcn.bn(y) + gcn.down(x))


def released_unit(unit, x):
    residual = released_temporal(unit.residual, x) if isinstance(unit.residual, ctrgcn.unit_tcn) else unit.residual(x)
    return F.relu(released_tcn(unit.tcn1, released_gcn(unit.gcn1, x)) + residual)


def released_logits(model, x):
    N, C, T, V, M = x.shape
    x = model.data_bn(x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T))
    x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
    for index in range(1, len(ctrgcn.UNITS) + 1):
        x = released_unit(getattr(model, f'l{index}'), x)
    return model.classify(model.pool(x, N))


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def buffers(model):
    return {name: tensor.clone() for name, tensor in model.named_buffers()}


@pytest.mark.parametrize('shape', SHAPES)
def test_training_forward_gradients_and_statistics_equal_the_released_computation(shape):
    torch.manual_seed(0)
    model = randomised(ctrgcn.Model(**SHAPES[shape]).double(), shape)
    reference = copy.deepcopy(model)
    x = sample(SHAPES[shape], dtype=torch.float64)
    logits, expected = model(x), released_logits(reference, x)
    assert relative(logits, expected) < 1e-12
    (logits.square().mean()).backward()
    (expected.square().mean()).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        # (the biases before a training-mode norm get no gradient but rounding noise, up to 2e-13 in either
        # computation on NW-UCLA's shapes)
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
    ours, theirs = buffers(model), buffers(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        if name.endswith('num_batches_tracked'):
            assert ours[name].item() == theirs[name].item() == 1, name
        else:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize('shape', SHAPES)
def test_eval_mode_folds_the_norms_and_keeps_the_logits_and_the_state(shape):
    torch.manual_seed(0)
    model = randomised(ctrgcn.Model(**SHAPES[shape]), shape).eval()
    state = copy.deepcopy(model.state_dict())
    x = sample(SHAPES[shape])
    with torch.no_grad():
        logits, expected = model(x), released_logits(model, x)
    assert relative(logits, expected) < 1e-5
    after = model.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(after[name], state[name]) for name in state)


def test_eval_mode_weights_follow_every_change_of_the_parameters():
    """The folded eval-mode weights are kept between calls: an optimiser step, a loaded state or a changed norm
    must reach the next call's logits, and eval mode under autograd still gives the parameters gradients."""
    torch.manual_seed(0)
    model = randomised(ctrgcn.Model(**UCLA), 'ucla').eval()
    x = sample(UCLA)

    def logits():
        with torch.no_grad():
            return model(x)

    first = logits()
    assert torch.equal(logits(), first)
    with torch.no_grad():
        model.l3.tcn1.branches[0][1].running_var.mul_(2)
    assert relative(logits(), released_logits(model, x)) < 1e-5 and not torch.equal(logits(), first)
    other = randomised(ctrgcn.Model(**UCLA), 'ucla').eval()
    model.load_state_dict(other.state_dict())
    assert relative(logits(), released_logits(other, x)) < 1e-5
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    model(x).square().mean().backward()
    assert model.l1.gcn1.convs[0].conv3.weight.grad.abs().sum() > 0
    before = logits()
    optimizer.step()
    assert not torch.equal(logits(), before)
    assert relative(logits(), released_logits(model, x)) < 1e-5


@pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning')
def test_a_traced_network_folds_the_norms_from_its_parameters():
    """tools/export.py traces under no_grad: the folded weights must be computed in the traced graph, from the
    parameters it carries, not taken from the eval-mode store as constants."""
    torch.manual_seed(0)
    model = randomised(ctrgcn.Model(**UCLA), 'ucla').eval()
    x = sample(UCLA)
    with torch.no_grad():
        model(x)                                                # fills the store
        traced = torch.jit.trace(model, x, check_trace=False)
        model.l2.tcn1.branches[0][1].running_var.mul_(3)
        torch.testing.assert_close(traced(x), model(x))


def test_merged_batch_norm_updates_each_layer_as_nn_batchnorm2d():
    torch.manual_seed(0)
    norms = [torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(5)]
    separate = copy.deepcopy(norms)
    x = torch.randn(4, 8, 6, 5)
    out = ctrgcn.batch_norm(x, norms)
    expected = torch.cat([separate[0](x[:, :3]), separate[1](x[:, 3:])], 1)
    torch.testing.assert_close(out, expected)
    for norm, reference in zip(norms, separate):
        torch.testing.assert_close(norm.running_mean, reference.running_mean)
        torch.testing.assert_close(norm.running_var, reference.running_var)
        assert norm.num_batches_tracked.item() == reference.num_batches_tracked.item() == 1


def test_max_pool_gives_tied_maxima_the_gradient_as_the_nchw_kernel():
    pool = torch.nn.MaxPool2d(kernel_size=(3, 1), stride=(1, 1), padding=(1, 0))
    x = torch.tensor([0., 1., 1., 1., 0., 0., 2., 2.]).view(1, 1, 8, 1).repeat(2, 3, 1, 4)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    weights = torch.randn(2, 3, 8, 4)
    (pool(a) * weights).sum().backward()
    (ctrgcn.max_pool(pool, b) * weights).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_autocast_training_step_runs():
    """Under bfloat16 autocast the graph convolution's projection takes its gradients in the lower precision."""
    torch.manual_seed(0)
    model = ctrgcn.Model(**UCLA)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = model(sample(UCLA)).float().square().mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def reference_model_class():
    for folder in (os.environ.get('LST_REFERENCE_DIR'), os.path.join(ROOT, '..', 'CTR-GCN')):
        if folder and os.path.isfile(os.path.join(folder, 'model', 'ctrgcn.py')):
            spec = importlib.util.spec_from_file_location('released_ctrgcn', os.path.join(folder, 'model', 'ctrgcn.py'))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.Model
    pytest.skip('no clone of Uason-Chen/CTR-GCN: set LST_REFERENCE_DIR or clone it to ../CTR-GCN')


@pytest.mark.parametrize('shape', SHAPES)
def test_released_checkpoint_loads_strictly_and_gives_the_released_logits(shape, tmp_path):
    torch.manual_seed(0)
    released = randomised(reference_model_class()(**SHAPES[shape], graph_args={'labeling_mode': 'spatial'}), shape)
    torch.save(released.state_dict(), tmp_path / 'released.pt')
    model = ctrgcn.Model(**SHAPES[shape])
    model.load_state_dict(torch.load(tmp_path / 'released.pt'), strict=True)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in released.state_dict().items()}
    x = sample(SHAPES[shape])
    with torch.no_grad():
        assert relative(model.eval()(x), released.eval()(x)) < 1e-5
    assert relative(model.train()(x), released.train()(x)) < 1e-5
