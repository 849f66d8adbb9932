"""A tiny NTU-layout dataset (class = which limb waves), its 4-class description files and a training config for
it: what the end-to-end and the bad-input tests train on (seconds on a CPU)."""
import os

import numpy as np
import yaml

NUM_CLASS = 4
NAMES = ['wave left arm', 'wave right arm', 'wave left leg', 'wave right leg']


def split(n, rng, frames=32):
    x = np.zeros((n, 40, 150), np.float32)
    labels = np.arange(n) % NUM_CLASS
    t = np.linspace(0, 2 * np.pi, frames)
    for i, label in enumerate(labels):
        body = rng.normal(scale=0.05, size=(frames, 25, 3)) + rng.normal(size=(1, 25, 3))
        body[:, 4 + 4 * label: 8 + 4 * label, 1] += np.sin(3 * t)[:, None]
        x[i, :frames, :75] = body.reshape(frames, 75)
    names = np.array([f'S001C001P{i:03d}R001A{label + 1:03d}' for i, label in enumerate(labels)])
    return x, np.eye(NUM_CLASS)[labels], names


def write_npz(path, train=24, test=12, seed=0):
    rng = np.random.default_rng(seed)
    x_tr, y_tr, n_tr = split(train, rng)
    x_te, y_te, n_te = split(test, rng)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, sample_name_train=n_tr,
             sample_name_test=n_te)


def write_descriptions(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'ntu120_label_map.txt').write_text('\n'.join(NAMES) + '\n')
    (folder / 'ntu120_synonyms.txt').write_text('\n'.join(f'{n},{n} quickly,{n} slowly' for n in NAMES) + '\n')
    (folder / 'ntu120_parts.txt').write_text('\n'.join(
        f'{n};head still;hand {n};arm {n};hip still;leg still;foot still' for n in NAMES) + '\n')
    return folder


def write_config(path, data, text_dir, cache_dir, model='model.ctrgcn.Model_lst_4part', k=8, **extra):
    """A one-epoch config on `data` with the offline text encoder; `extra` sets or overrides any key."""
    cfg = dict(
        feeder='feeders.feeder_ntu.Feeder', num_worker=0,
        train_feeder_args=dict(data_path=str(data), split='train', window_size=16, p_interval=[0.5, 1],
                               random_rot=True),
        test_feeder_args=dict(data_path=str(data), split='test', window_size=16, p_interval=[0.95]),
        model=model, model_args=dict(num_class=NUM_CLASS, num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph',
                                     graph_args=dict(labeling_mode='spatial'), head=['all-MiniLM-L6-v2'], k=k),
        base_lr=0.05, step=[50], batch_size=8, test_batch_size=6, num_epoch=1, nesterov=True, weight_decay=0.0005,
        text_dir=str(text_dir), text_cache_dir=str(cache_dir), save_epoch=0)
    cfg.update(extra)
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, 'w') as f:
        yaml.dump(cfg, f)
    return str(path)
