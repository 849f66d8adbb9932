"""The main job end to end on tiny data (CPU): train, resume, test with scores, ensemble, DDP with torchrun."""
import glob
import json
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
import tiny_ntu
from engine import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """NTU-layout npz (4 classes, class = which limb waves) and 4-class description files."""
    base = tmp_path_factory.mktemp('e2e')
    tiny_ntu.write_npz(str(base / 'data' / 'ntu' / 'NTU60_CS.npz'))
    tiny_ntu.write_descriptions(base / 'text')
    return base


def config(workspace, name, model, k, **extra):
    return tiny_ntu.write_config(workspace / f'{name}.yaml', workspace / 'data' / 'ntu' / 'NTU60_CS.npz',
                                 workspace / 'text', workspace / 'bank', model, k, **extra)


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
                             '--work-dir', str(work)], env=env, capture_output=True, text=True, timeout=1800)
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
        ensemble.main(['--datasets', 'ntu/xsub', '--joint-dir', str(tmp_path), '--bone-dir', str(tmp_path / 'w'),
                       '--data-dir', str(workspace / 'data')])


@pytest.mark.parametrize('workers', [0, 2])
def test_paired_arms_share_weights_and_data_stream(workspace, tmp_path, workers):
    """`loss_alpha` 1 and 0 with the same seed: identical initial weights, batches, augmentation and prompt draws."""
    from engine.args import parse_args
    from engine.rng import init_seed
    from engine.trainer import Processor
    cfg = config(workspace, 'pair', 'model.ctrgcn.Model_lst_4part', 8)
    streams = []
    for alpha in (1.0, 0.0):
        args = parse_args('ntu', ['--config', cfg, '--work-dir', str(tmp_path / str(alpha)), '--loss-alpha', str(alpha),
                                  '--num-worker', str(workers), '--seed', '3'])
        init_seed(args.seed)
        processor = Processor(args)
        weights = {k: v.clone() for k, v in processor.model.state_dict().items()}
        batches = []
        for epoch in range(2):
            for data, label, index in processor.data_loader['train']:
                if workers and alpha == 0:
                    torch.rand(5)                # other draws from the global stream change neither order, prompts
                text = processor.criterion.text_features(label)    # nor the workers' augmentation
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


def test_outputs_a_user_can_find_and_read(workspace, tmp_path):
    """The best and the last weights are always kept (best.pt too), CSVs have a header and class names, the rows of
    right/wrong files name their samples, the test phase logs the weights' epoch and keeps the training config."""
    work = tmp_path / 'run'
    cfg = config(workspace, 'outputs', 'model.ctrgcn.Model_lst_4part', 8, save_epoch=30, num_epoch=3, base_lr=0.5)
    run('ntu', '--config', cfg, '--work-dir', work)
    metrics = json.loads((work / 'metrics.json').read_text())
    best = metrics['best_epoch']
    assert metrics['finished'] and [h['epoch'] for h in metrics['history']] == [1, 2, 3]
    kept = sorted(p.name.split('-')[1] for p in work.glob('runs-*.pt'))
    assert set(kept) == {str(best), '3'}                                  # best and last, though save_epoch is 30
    (best_file,) = work.glob(f'runs-{best}-*.pt')
    assert (work / 'best.pt').read_bytes() == best_file.read_bytes()
    assert f'Best weights: {best_file}' in (work / 'log.txt').read_text()
    rows = (work / 'best_test_each_class_acc.csv').read_text().splitlines()
    assert rows[0].startswith('class,name,samples,accuracy,predicted_0') and rows[1].startswith('0,wave left arm,')
    assert (work / 'epoch2_test_each_class_acc.csv').exists() and (work / 'last_test_score.pkl').exists()
    right = (work / f'{best_file.stem}_right.txt').read_text().splitlines()
    assert len(right) == 12 and all(line.split(',')[2].startswith('S001C001P') for line in right)
    config_before = (work / 'config.yaml').read_text()
    run('ntu', '--config', work / 'config.yaml', '--work-dir', work, '--phase', 'test', '--weights', work / 'best.pt')
    assert (work / 'config.yaml').read_text() == config_before and (work / 'config_test.yaml').exists()
    assert f'Weights: {work / "best.pt"} (epoch {best}).' in (work / 'log.txt').read_text()
    assert (work / 'best_right.txt').exists() and (work / 'best_test_each_class_acc.csv').exists()


def test_resume_is_exact_with_workers(workspace, tmp_path):
    """Two epochs in one go or one, then a resumed second: the same weights, bit for bit, with 2 loader workers."""
    cfg = config(workspace, 'exact', 'model.ctrgcn.Model_lst_4part', 8, num_worker=2, num_epoch=2)
    run('ntu', '--config', cfg, '--work-dir', tmp_path / 'straight')
    run('ntu', '--config', cfg, '--work-dir', tmp_path / 'resumed', '--num-epoch', 1)
    run('ntu', '--config', cfg, '--work-dir', tmp_path / 'resumed')
    assert 'Resumed from' in (tmp_path / 'resumed' / 'log.txt').read_text()
    straight = torch.load(tmp_path / 'straight' / 'checkpoint.pt', weights_only=True)['model']
    resumed = torch.load(tmp_path / 'resumed' / 'checkpoint.pt', weights_only=True)['model']
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
