import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import yaml

from engine import distributed
from engine.args import parse_args
from model.objective import contrastive_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_loss(features, parts, texts, logit_scale, labels):
    """The release's computation, as its training loop writes it (gen_label, create_logits, KLLoss)."""
    num = len(labels)
    gt = np.zeros((num, num))
    for i, label in enumerate(labels):
        for k in range(num):
            if labels[k] == label:
                gt[i, k] = 1
    kl = nn.KLDivLoss(reduction='mean')                    # size_average=True, reduce=True

    def kl_loss(prediction, label):
        return kl(F.log_softmax(prediction, 1), F.softmax(label * 10, 1)) * prediction.shape[0]

    terms = []
    for ind in range(5):
        x1 = features if ind == 0 else parts[ind - 1]
        x2 = texts[ind]
        x1 = x1 / x1.norm(dim=-1, keepdim=True)
        x2 = x2 / x2.norm(dim=-1, keepdim=True)
        scale = logit_scale[:, ind].mean()
        ground_truth = torch.tensor(gt, dtype=x1.dtype)
        terms.append((kl_loss(scale * x1 @ x2.t(), ground_truth) + kl_loss(scale * x2 @ x1.t(), ground_truth)) / 2)
    return sum(terms) / len(terms)


def random_batch(batch=12, width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, width, generator=g)
    parts = [torch.randn(batch, width, generator=g) for _ in range(4)]
    texts = [torch.randn(batch, width, generator=g) for _ in range(5)]
    labels = torch.randint(0, 4, (batch,), generator=g)
    scale = torch.rand(2, 5, generator=g) * 10                # two rows: the DataParallel layout
    return features, parts, texts, scale, labels


def test_loss_equals_the_release_formulation():
    features, parts, texts, scale, labels = random_batch()
    ours = contrastive_loss(features, parts, texts, scale, labels)
    reference = release_loss(features, parts, texts, scale, labels.tolist())
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)


def _ddp_worker(rank, world, store, result):
    torch.distributed.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=world)
    features, parts, texts, scale, labels = random_batch()
    rows = slice(rank * 6, rank * 6 + 6)
    local = features[rows].clone().requires_grad_()
    gather = distributed.gather_with_grad
    loss = contrastive_loss(gather(local), [gather(p[rows]) for p in parts], [gather(t[rows]) for t in texts],
                            scale, gather(labels[rows])) * world
    loss.backward()
    grads = [torch.empty_like(local.grad) for _ in range(world)]
    torch.distributed.all_gather(grads, local.grad / world)        # what DDP's gradient averaging sees
    if rank == 0:
        result.put((loss.item() / world, torch.cat(grads).numpy()))
    torch.distributed.destroy_process_group()


def test_distributed_loss_and_gradient_equal_single_process(tmp_path):
    ctx = mp.get_context('spawn')
    result = ctx.Queue()
    # the processes meet in a file of this test's own, not on a port another program may take meanwhile
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / 'store'), result), nprocs=2, join=True)
    loss, grad = result.get(timeout=60)
    features, parts, texts, scale, labels = random_batch()
    features.requires_grad_()
    single = contrastive_loss(features, parts, texts, scale, labels)
    single.backward()
    assert loss == pytest.approx(single.item(), rel=1e-6)
    np.testing.assert_allclose(grad, features.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_arguments_precedence_and_unknown_keys(tmp_path):
    config = tmp_path / 'c.yaml'
    config.write_text('model: model.ctrgcn.Model\nbase_lr: 0.2\nstep: [3, 4]\ntrain_feeder_args: {window_size: 8}\n')
    args = parse_args('ucla', ['--config', str(config), '--base-lr', '0.5'])
    assert args.base_lr == 0.5 and args.step == [3, 4] and args.loss_alpha == 1.0 and args.device == [0]
    args = parse_args('ntu', ['--config', str(config), '--train-feeder-args', "{'debug': True}"])
    assert args.train_feeder_args == {'window_size': 8, 'debug': True} and args.loss_alpha == 0.8
    config.write_text('model: model.ctrgcn.Model\nclasses: null\nunseen_classes: null\n')     # as config.yaml saves them
    args = parse_args('ntu', ['--config', str(config)])
    assert args.classes is None and args.unseen_classes is None
    config.write_text('model: model.ctrgcn.Model\nbase_lr: 0.2\nlearning_rate: 3\n')
    with pytest.raises(ValueError, match="unknown key.*learning_rate.*valid keys: .*base_lr"):
        parse_args('ntu', ['--config', str(config)])


def test_every_config_loads_and_builds_its_model():
    from torchlight import import_class
    names = []
    for bench in ('nturgbd-cross-subject', 'nturgbd-cross-view', 'nturgbd120-cross-subject',
                  'nturgbd120-cross-set', 'ucla'):
        for stream in ('default', 'lst_joint', 'lst_bone', 'lst_joint_vel', 'lst_bone_vel'):
            path = os.path.join(ROOT, 'config', bench, f'{stream}.yaml')
            args = parse_args('ucla' if bench == 'ucla' else 'ntu', ['--config', path])
            model = import_class(args.model)(**args.model_args)
            lst = stream != 'default'
            assert hasattr(model, 'part_list') == lst
            if lst:
                assert model.k == (1 if 'bone' in stream else (6 if bench == 'ucla' else 8))
                assert args.num_epoch == 110 and args.step == [90, 100] and args.warm_up_epoch == 5
                assert (args.base_lr, args.weight_decay, args.batch_size) == (
                    (0.2, 0.0004, 64) if bench == 'ucla' else (0.1, 0.0005, 200))
                assert ('bone' in args.model) == ('bone' in stream)
            vel = 'vel' in stream
            feeder = args.train_feeder_args
            assert (feeder.get('vel') if bench != 'ucla' else 'motion' in feeder['data_path']) == vel
            names.append(args.model)
    assert len(names) == 25


def test_learning_rate_schedule(tmp_path):
    from engine.optim import adjust_learning_rate
    arg = parse_args('ntu', ['--model', 'm', '--base-lr', '0.1', '--warm_up_epoch', '5', '--step', '90', '100',
                             '--te-lr-ratio', '0.5'])
    optimizer = torch.optim.SGD([{'params': [torch.zeros(1)]}, {'params': [torch.zeros(1)]}], lr=1)
    lrs = [adjust_learning_rate(optimizer, arg, e) for e in (0, 4, 5, 89, 90, 99, 100)]
    np.testing.assert_allclose(lrs, [0.02, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001])
    assert optimizer.param_groups[1]['lr'] == pytest.approx(0.0005)


def test_device_cpu_is_the_cpu_even_with_cuda(monkeypatch, tmp_path):
    config = os.path.join(ROOT, 'config', 'ucla', 'lst_joint.yaml')
    assert parse_args('ucla', ['--config', config, '--device', 'cpu']).device == ['cpu']
    for bad in (['cpu', '0'], ['gpu']):
        with pytest.raises(SystemExit):
            parse_args('ucla', ['--config', config, '--device', *bad])
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)     # a GPU machine, as far as choose_device knows
    arg = parse_args('ucla', ['--config', config, '--device', 'cpu'])
    device, use_amp = distributed.choose_device(arg.device, arg.amp, 1, 0, print)
    assert device == torch.device('cpu') and not use_amp


def test_the_saved_config_reads_back_with_tuple_arguments(tmp_path):
    from engine.args import load_config, parse_args, save_config
    args = parse_args('ucla', ['--config', os.path.join(ROOT, 'config', 'ucla', 'lst_joint.yaml'),
                               '--work-dir', str(tmp_path), '--train-feeder-args', "{'p_interval': (0.5, 1)}"])
    save_config(args, str(tmp_path))
    saved = load_config(str(tmp_path / 'config.yaml'))           # yaml.safe_load, as the test phase and tools read it
    assert saved['train_feeder_args']['p_interval'] == [0.5, 1] and saved['base_lr'] == args.base_lr
    assert saved['model_args'] == yaml.safe_load(open(os.path.join(ROOT, 'config', 'ucla', 'lst_joint.yaml')))[
        'model_args']
