"""Small generated datasets, configs and weights shared by the tests of tools/predict.py, export.py, visualize.py."""
import os
import sys

import torch
import yaml

from engine import main as engine_main
from preprocess import cli, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
NTU_GRAPH = dict(num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph', graph_args=dict(labeling_mode='spatial'))
UCLA_GRAPH = dict(num_point=20, num_person=1, graph='graph.ucla.Graph', graph_args=dict(labeling_mode='spatial'))


def ntu_dataset(base, dataset='ntu60', classes=4, per_class=6):
    """Synthetic raw NTU files (one without any skeleton) in base/raw, preprocessed into base/<dataset>."""
    raw, out = base / 'raw', base / dataset
    synthetic.write_ntu(str(raw), classes, per_class, two_person_classes=1, empty_files=1, ntu120=dataset == 'ntu120')
    cli.main(argv=['--dataset', dataset, '--raw-dir', str(raw), '--out-dir', str(out), '--workers', '1'])
    stem = 'NTU60_CS' if dataset == 'ntu60' else 'NTU120_CSub'
    return raw, str(out / f'{stem}.npz')


def ntu_config(path, data, model, model_args, base_lr=0.05, **feeder):
    """A training config on a preprocessed NTU file (window 16, tiny batches), like the released ones."""
    return write_config(path, base_lr, dict(
        feeder='feeders.feeder_ntu.Feeder',
        train_feeder_args=dict(data_path=data, split='train', window_size=16, p_interval=[0.5, 1], random_rot=True,
                               **feeder),
        test_feeder_args=dict(data_path=data, split='test', window_size=16, p_interval=[0.95], **feeder),
        model=model, model_args=dict(NTU_GRAPH, **model_args)))


def ucla_config(path, root, model, model_args, modality='joint', debug=False):
    return write_config(path, 0.05, dict(
        feeder='feeders.feeder_ucla.Feeder',
        train_feeder_args=dict(data_path=modality, label_path='train', root=root),
        test_feeder_args=dict(data_path=modality, label_path='val', root=root, debug=debug),
        model=model, model_args=dict(UCLA_GRAPH, **model_args)))


def write_config(path, base_lr, config):
    config.update(num_worker=0, base_lr=base_lr, step=[50], batch_size=8, test_batch_size=5, num_epoch=1,
                  save_epoch=0, weight_decay=0.0005, nesterov=True, text_cache_dir=str(path.parent / 'bank'))
    path.write_text(yaml.dump(config))
    return str(path)


def seeded_weights(config_path, out, seed=0):
    """The state dict of the config's model freshly built with `seed` (BatchNorm statistics as initialised)."""
    from trained_model import build_model, read_config
    torch.manual_seed(seed)
    torch.save(build_model(read_config(config_path), config_path).state_dict(), out)
    return str(out)


def run_engine(dataset, *argv):
    engine_main(dataset, [str(a) for a in argv])


def saved_test_scores(dataset, config, work_dir, weights):
    """The trainer's test phase with saved scores; returns {sample name: logits}."""
    import pickle
    run_engine(dataset, '--config', config, '--work-dir', work_dir, '--phase', 'test', '--save-score', 'True',
               '--weights', weights)
    with open(os.path.join(work_dir, 'epoch1_test_score.pkl'), 'rb') as f:
        return pickle.load(f)               # written by this test's own test phase
