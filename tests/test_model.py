import copy

import pytest
import torch

from model import baseline, ctrgcn

NTU = dict(num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph', graph_args={'labeling_mode': 'spatial'})
UCLA = dict(num_point=20, num_person=1, graph='graph.ucla.Graph', graph_args={'labeling_mode': 'spatial'})
LST_VARIANTS = [
    ('Model_lst_4part', dict(NTU, num_class=120, head=['ViT-B/32'], k=8), 2_120_017),
    ('Model_lst_4part_bone', dict(NTU, num_class=60, head=['ViT-B/32'], k=1), 2_104_597),
    ('Model_lst_4part_ucla', dict(UCLA, num_class=10, head=['ViT-B/32'], k=6), 2_084_817),
    ('Model_lst_4part_bone_ucla', dict(UCLA, num_class=10, head=['ViT-B/32'], k=1), 2_084_817),
]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def sample(kw, n=2, t=16, dtype=torch.float32):
    return torch.randn(n, 3, t, kw['num_point'], kw['num_person'], dtype=dtype)


def test_ctrgcn_parameter_count():
    assert n_params(ctrgcn.Model(num_class=60, **NTU)) == 1_446_672


@pytest.mark.parametrize('name, kw, count', LST_VARIANTS)
def test_lst_parameter_counts_and_round_trip(name, kw, count, tmp_path):
    torch.manual_seed(0)
    model = getattr(ctrgcn, name)(**kw).eval()
    assert n_params(model) == count
    path = tmp_path / 'weights.pt'
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    other = getattr(ctrgcn, name)(**kw).eval()
    other.load_state_dict(torch.load(path), strict=True)
    x = sample(kw)
    with torch.no_grad():
        a, b = model(x), other(x)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    for fa, fb in zip(a[3], b[3]):
        torch.testing.assert_close(fa, fb, rtol=0, atol=0)


def test_released_parameter_names():
    """The names a released checkpoint carries for one unit and the LST heads (strict loading depends on them)."""
    keys = set(ctrgcn.Model_lst_4part(num_class=60, **NTU).state_dict())
    for name in ['data_bn.weight', 'fc.weight', 'logit_scale', 'linear_head.ViT-B/32.weight', 'part_list.3.bias',
                 'l1.gcn1.PA', 'l1.gcn1.alpha', 'l1.gcn1.convs.2.conv4.weight', 'l1.gcn1.down.0.weight',
                 'l1.gcn1.down.1.running_var', 'l1.gcn1.bn.weight', 'l1.tcn1.branches.0.3.conv.weight',
                 'l1.tcn1.branches.2.4.running_mean', 'l1.tcn1.branches.3.1.weight', 'l5.residual.conv.weight',
                 'l5.residual.bn.bias']:
        assert name in keys, name
    assert not any('A_vector' in k or k.endswith('.A') or 'joints' in k for k in keys)
    assert len(keys) == len(ctrgcn.Model(num_class=60, **NTU).state_dict()) + 1 + 2 + 8


def test_batched_graph_conv_equals_per_subset_ctrgc():
    """unit_gcn runs the three subsets together; the released per-subset CTRGC sum is the reference."""
    torch.manual_seed(0)
    unit = ctrgcn.unit_gcn(64, 128, ctrgcn.Model(num_class=5, **NTU).graph.A).double()
    with torch.no_grad():
        unit.alpha.fill_(0.7)
        unit.PA.add_(torch.randn_like(unit.PA) * 0.1)
    x = torch.randn(3, 64, 12, 25, dtype=torch.float64)
    expected = sum(conv(x, unit.PA[i], unit.alpha) for i, conv in enumerate(unit.convs))
    torch.testing.assert_close(unit.graph_conv(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('name, kw, count', LST_VARIANTS)
def test_the_inference_pass_is_the_training_pass_logits(name, kw, count):
    """`logits` (the test phase's and the tools' pass) gives forward's logits bit for bit, without the heads."""
    torch.manual_seed(0)
    model = getattr(ctrgcn, name)(**kw).eval()
    x = sample(kw)
    with torch.no_grad():
        assert torch.equal(model.logits(x), model(x)[0])
    assert model.text_head == 'ViT-B/32' and ctrgcn.Model.text_head is None


def test_lst_logits_are_the_backbone_logits():
    torch.manual_seed(0)
    lst = ctrgcn.Model_lst_4part(num_class=60, k=0, **NTU).eval()
    plain = ctrgcn.Model(num_class=60, **NTU).eval()
    plain.load_state_dict({k: v for k, v in lst.state_dict().items() if k in plain.state_dict()})
    x = sample(NTU)
    with torch.no_grad():
        torch.testing.assert_close(lst(x)[0], plain(x))


def test_bone_encoding_inside_the_model():
    """k=1 feeds the backbone child-minus-parent vectors: same logits as a k=0 model given bones by hand."""
    torch.manual_seed(0)
    bone_model = ctrgcn.Model_lst_4part_bone(num_class=60, k=1, **NTU).eval()
    joint_model = ctrgcn.Model_lst_4part_bone(num_class=60, k=0, **NTU).eval()
    joint_model.load_state_dict(bone_model.state_dict())
    x = sample(NTU)
    parents = bone_model.graph.A_outward_binary.argmax(1)
    bones = x - x[:, :, :, parents] * torch.tensor(bone_model.graph.A_outward_binary.sum(1)).view(1, 1, 1, -1, 1)
    with torch.no_grad():
        torch.testing.assert_close(bone_model(x)[0], joint_model(bones)[0], rtol=1e-4, atol=1e-4)


def test_outputs_and_part_order():
    torch.manual_seed(0)
    model = ctrgcn.Model_lst_4part(num_class=7, head=['ViT-B/32', 'ViT-L/14'], k=8, **NTU).eval()
    logits, features, scale, parts = model(sample(NTU, n=3))
    assert logits.shape == (3, 7) and scale.shape == (1, 5)
    assert features['ViT-B/32'].shape == (3, 512) and features['ViT-L/14'].shape == (3, 768)
    assert [p.shape for p in parts] == [(3, 512)] * 4
    torch.testing.assert_close(scale, torch.full((1, 5), torch.log(torch.tensor(1 / 0.07)).item()))
    # returned order is [head, hand, hip, foot]; part_list holds [head, hand, foot, hip]
    x = sample(NTU, n=3)
    with torch.no_grad():
        hip = model(x)[3][2]
        model.part_list[3].bias.add_(1.0)
        torch.testing.assert_close(model(x)[3][2], hip + 1.0)


@pytest.mark.parametrize('head, width', [('ViT-L/14@336px', 768), ('RN50x64', 1024), ('all-MiniLM-L6-v2', 384)])
def test_part_heads_follow_the_first_text_width(head, width):
    model = ctrgcn.Model_lst_4part_ucla(num_class=10, head=[head], **UCLA).eval()
    _, features, _, parts = model(sample(UCLA))
    assert features[head].shape == (2, width)
    assert all(p.shape == (2, width) for p in parts)


def test_model_follows_dtype_and_device_of_its_parameters():
    model = ctrgcn.Model_lst_4part(num_class=5, k=8, adaptive=False, **NTU).double().eval()
    assert model.A_vector.dtype == torch.float64 and model.l1.gcn1.A.dtype == torch.float64
    logits = model(sample(NTU, dtype=torch.float64))[0]
    assert logits.dtype == torch.float64
    assert 'l1.gcn1.A' not in model.state_dict()


def test_channels_last_model_trains_to_the_same_outputs_and_gradients():
    """channels_last weights make every conv output channels-last; graph_conv must accept any strides."""
    torch.manual_seed(0)
    model = ctrgcn.Model_lst_4part(num_class=5, k=8, **NTU).double()          # float64: no rounding noise
    other = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert other.l1.gcn1.convs[0].conv3.weight.is_contiguous(memory_format=torch.channels_last)
    x = sample(NTU, dtype=torch.float64)
    results = []
    for m in (model, other):
        logits, _, _, parts = m(x)
        (logits.square().mean() + sum(p.square().mean() for p in parts)).backward()
        results.append((logits, parts, m.l1.gcn1.convs[0].conv3.weight.grad, m.l1.gcn1.PA.grad))
    (logits, parts, w, pa), (logits_cl, parts_cl, w_cl, pa_cl) = results
    for a, b in zip([logits, *parts, w, pa], [logits_cl, *parts_cl, w_cl, pa_cl]):
        assert ((b - a).norm() / a.norm()).item() < 1e-9


def test_flat_input_is_accepted():
    model = ctrgcn.Model(num_class=5, num_point=20, num_person=1, graph='graph.ucla.Graph').eval()
    x = torch.randn(2, 16, 60)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.view(2, 16, 20, 3).permute(0, 3, 1, 2).unsqueeze(-1)))


def test_baseline_model():
    torch.manual_seed(0)
    model = baseline.Model(num_class=60, **NTU).eval()
    assert n_params(model) == 2_092_902
    assert 'l1.gcn1.conv_d.2.weight' in model.state_dict()
    assert model(sample(NTU)).shape == (2, 60)


def test_bad_input_shape_names_the_layout():
    model = ctrgcn.Model(num_class=5, **NTU)
    with pytest.raises(ValueError, match=r'N,C,T,V,M = N,3,T,25,2.*got \(2, 3, 16, 20, 2\)'):
        model(torch.randn(2, 3, 16, 20, 2))
    with pytest.raises(ValueError, match='rank 4'):
        model(torch.randn(2, 3, 16, 25))


def test_unknown_head_lists_known_heads():
    with pytest.raises(ValueError, match=r"unknown text encoder head 'ViT-H/14'.*ViT-B/32.*all-MiniLM-L6-v2"):
        ctrgcn.Model_lst_4part(num_class=5, head=['ViT-H/14'], **NTU)


def test_unknown_graph_class():
    with pytest.raises(ImportError, match="module 'graph.kinetics' not found"):
        ctrgcn.Model(num_class=5, num_point=18, graph='graph.kinetics.Graph')
    with pytest.raises(ImportError, match="has no 'Grph'"):
        ctrgcn.Model(num_class=5, graph='graph.ntu_rgb_d.Grph')
    with pytest.raises(ValueError, match='num_point=20 but the graph'):
        ctrgcn.Model(num_class=5, num_point=20, graph='graph.ntu_rgb_d.Graph')
