"""The main job end to end on tiny data (CPU): train, resume, test with scores, ensemble, DDP with torchrun."""
import glob
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import ensemble
from engine import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASS = 4
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """NTU-layout npz (4 classes, class = which arm waves) and 4-class description files."""
    base = tmp_path_factory.mktemp('e2e')
    rng = np.random.default_rng(0)

    def split(n):
        x = np.zeros((n, 40, 150), np.float32)
        labels = np.arange(n) % NUM_CLASS
        t = np.linspace(0, 2 * np.pi, 32)
        for i, label in enumerate(labels):
            body = rng.normal(scale=0.05, size=(32, 25, 3)) + rng.normal(size=(1, 25, 3))
            body[:, 4 + 4 * label: 8 + 4 * label, 1] += np.sin(3 * t)[:, None]
            x[i, :32, :75] = body.reshape(32, 75)
        names = np.array([f'S001C001P{i:03d}R001A{l + 1:03d}' for i, l in enumerate(labels)])
        return x, np.eye(NUM_CLASS)[labels], names

    (base / 'data' / 'ntu').mkdir(parents=True)
    x_tr, y_tr, n_tr = split(24)
    x_te, y_te, n_te = split(12)
    np.savez(base / 'data' / 'ntu' / 'NTU60_CS.npz', x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
             sample_name_train=n_tr, sample_name_test=n_te)
    text = base / 'text'
    text.mkdir()
    names = ['wave left arm', 'wave right arm', 'wave left leg', 'wave right leg']
    (text / 'ntu120_label_map.txt').write_text('\n'.join(names) + '\n')
    (text / 'ntu120_synonyms.txt').write_text('\n'.join(f'{n},{n} quickly,{n} slowly' for n in names) + '\n')
    (text / 'ntu120_parts.txt').write_text('\n'.join(
        f'{n};head still;hand {n};arm {n};hip still;leg still;foot still' for n in names) + '\n')
    return base


def config(workspace, name, model, k, **extra):
    data = str(workspace / 'data' / 'ntu' / 'NTU60_CS.npz')
    cfg = dict(
        feeder='feeders.feeder_ntu.Feeder', num_worker=0,
        train_feeder_args=dict(data_path=data, split='train', window_size=16, p_interval=[0.5, 1], random_rot=True),
        test_feeder_args=dict(data_path=data, split='test', window_size=16, p_interval=[0.95]),
        model=model, model_args=dict(num_class=NUM_CLASS, num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph',
                                     graph_args=dict(labeling_mode='spatial'), head=['all-MiniLM-L6-v2'], k=k),
        base_lr=0.05, step=[50], batch_size=8, test_batch_size=6, num_epoch=1, nesterov=True, weight_decay=0.0005,
        text_dir=str(workspace / 'text'), text_cache_dir=str(workspace / 'bank'), save_epoch=0, **extra)
    path = workspace / f'{name}.yaml'
    path.write_text(yaml.dump(cfg))
    return str(path)


def run(dataset, *argv):
    main(dataset, [str(a) for a in argv])


def test_train_resume_test_and_ensemble(workspace):
    joint_dir, bone_dir = workspace / 'joint', workspace / 'bone'
    joint_cfg = config(workspace, 'joint', 'model.ctrgcn.Model_lst_4part', 8)
    run('ntu', '--config', joint_cfg, '--work-dir', joint_dir, '--device', 0, 1)    # --device parsed, CPU used
    log = (joint_dir / 'log.txt').read_text()
    assert 'No CUDA device' in log and 'Building the text feature bank' in log
    assert glob.glob(str(joint_dir / 'runs-1-3.pt')) and (joint_dir / 'config.yaml').read_text().startswith('# command')
    # resume: asking for two epochs continues after the first
    run('ntu', '--config', joint_cfg, '--work-dir', joint_dir, '--num-epoch', 2)
    log = (joint_dir / 'log.txt').read_text()
    assert 'Resumed from' in log and 'Training epoch: 2' in log and log.count('Training epoch: 1') == 1
    for name in ('checkpoint.pt', 'training_curves.png', 'confusion_matrix.png', 'epoch1_test_score.pkl',
                 'epoch1_test_each_class_acc.csv'):
        assert (joint_dir / name).exists(), name
    # test phase with saved scores, from the saved config, without any text encoder
    weights = sorted(glob.glob(str(joint_dir / 'runs-2-*.pt')))[-1]
    (joint_dir / 'epoch1_test_score.pkl').unlink()
    run('ntu', '--config', joint_dir / 'config.yaml', '--work-dir', joint_dir, '--phase', 'test',
        '--save-score', 'True', '--weights', weights)
    with open(joint_dir / 'epoch1_test_score.pkl', 'rb') as f:
        scores = pickle.load(f)
    assert len(scores) == 12 and next(iter(scores)).startswith('S001C001P') and next(iter(scores.values())).shape == (4,)
    # a bone stream, then the two-stream ensemble
    run('ntu', '--config', config(workspace, 'bone', 'model.ctrgcn.Model_lst_4part_bone', 1), '--work-dir', bone_dir,
        '--save-score', 'True')
    top1, top5 = ensemble.main(['--datasets', 'ntu/xsub', '--joint-dir', str(joint_dir), '--bone-dir', str(bone_dir),
                                '--data-dir', str(workspace / 'data')])
    assert 0 <= top1 <= top5 == 1.0                                   # 4 classes: top-5 always hits
    labels = np.load(workspace / 'data' / 'ntu' / 'NTU60_CS.npz')['y_test'].argmax(1)
    with open(bone_dir / 'epoch1_test_score.pkl', 'rb') as f:
        bone = pickle.load(f)
    fused = np.stack([scores[n] + bone[n] for n in scores])
    assert top1 == pytest.approx(np.mean(fused.argmax(1) == labels))


def test_ctrgcn_baseline_trains_without_text(workspace):
    cfg = config(workspace, 'base', 'model.ctrgcn.Model', 0)
    with open(cfg) as f:
        data = yaml.safe_load(f)
    for key in ('head', 'k'):
        data['model_args'].pop(key)
    data['text_cache_dir'] = str(workspace / 'no-bank')
    with open(cfg, 'w') as f:
        yaml.dump(data, f)
    run('ntu', '--config', cfg, '--work-dir', workspace / 'base')
    assert (workspace / 'base' / 'runs-1-3.pt').exists() and not (workspace / 'no-bank').exists()


def test_ddp_two_cpu_processes(workspace):
    cfg = config(workspace, 'ddp', 'model.ctrgcn.Model_lst_4part', 8)
    work = workspace / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    with socket.socket() as s:                                          # torchrun hangs on port 0: pick one
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                             '--master_port', str(port), os.path.join(ROOT, 'main_multipart_ntu.py'), '--config', cfg,
                             '--work-dir', str(work)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (work / 'log.txt').read_text()
    assert log.count('Training epoch: 1') == 1                          # rank 0 alone logs
    assert (work / 'runs-1-3.pt').exists() and (work / 'epoch1_test_score.pkl').exists()


def test_errors(workspace, tmp_path):
    with pytest.raises(FileNotFoundError, match='config file'):
        run('ntu', '--config', tmp_path / 'nope.yaml')
    cfg = config(workspace, 'joint', 'model.ctrgcn.Model_lst_4part', 8)
    with pytest.raises(FileNotFoundError, match='missing.pt: weights file not found'):
        run('ntu', '--config', cfg, '--work-dir', tmp_path / 'w', '--phase', 'test', '--weights', tmp_path / 'missing.pt')
    with pytest.raises(FileNotFoundError, match='epoch1_test_score.pkl not found'):
        ensemble.main(['--datasets', 'ntu/xsub', '--joint-dir', str(tmp_path), '--bone-dir', str(tmp_path),
                       '--data-dir', str(workspace / 'data')])


@pytest.mark.parametrize('workers', [0, 2])
def test_paired_arms_share_weights_and_data_stream(workspace, tmp_path, workers):
    """`loss_alpha` 1 and 0 with the same seed: identical initial weights, batches, augmentation and prompt draws."""
    from engine.args import parse_args
    from engine.trainer import Processor, init_seed
    cfg = config(workspace, 'pair', 'model.ctrgcn.Model_lst_4part', 8)
    streams = []
    for alpha in (1.0, 0.0):
        args = parse_args('ntu', ['--config', cfg, '--work-dir', str(tmp_path / str(alpha)), '--loss-alpha', str(alpha),
                                  '--num-worker', str(workers), '--seed', '3'])
        init_seed(args.seed)
        processor = Processor(args, 'ntu')
        weights = {k: v.clone() for k, v in processor.model.state_dict().items()}
        batches = []
        for epoch in range(2):
            for data, label, index in processor.data_loader['train']:
                if workers and alpha == 0:
                    torch.rand(5)                # other draws from the global stream change neither order, prompts
                text = processor.text_features(label)          # nor the workers' augmentation
                batches.append((data, label, index, text))
                if epoch == 0:
                    processor.model(data)                           # forward passes consume nothing random
        streams.append((weights, batches))
    (weights_a, batches_a), (weights_b, batches_b) = streams
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert len(batches_a) == len(batches_b) == 6
    for (data_a, label_a, index_a, text_a), (data_b, label_b, index_b, text_b) in zip(batches_a, batches_b):
        assert torch.equal(index_a, index_b) and torch.equal(label_a, label_b) and torch.equal(data_a, data_b)
        assert all(torch.equal(a, b) for a, b in zip(text_a, text_b))
    # and the stream is a random one: the second epoch is shuffled differently from the first
    assert not torch.equal(torch.cat([b[2] for b in batches_a[:3]]), torch.cat([b[2] for b in batches_a[3:]]))
