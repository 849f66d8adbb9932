"""The run's model and data from its arguments: classes of the project only, splits checked, loaders seeded."""
import os

import numpy as np
import torch
import torch.nn as nn

from torchlight import import_class

PROJECT_CLASSES = {'model': (('model',), nn.Module), 'feeder': (('feeders',), torch.utils.data.Dataset)}


def build(kind, name, arguments):
    """Construct the configured model or feeder class (one of the project's: a config cannot name any callable),
    naming the class and its arguments when they do not fit."""
    packages, base = PROJECT_CLASSES[kind]
    cls = import_class(name, packages, base)
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ValueError(f'{kind} {name}: {exc} (arguments given: {", ".join(sorted(arguments)) or "none"})') from None


def datasets(arg, world, model):
    """{'train': ..., 'test': ...} feeders (no 'train' in the test phase), checked: splits with samples and labels of
    the model's classes, a training set of at least one batch, keypoints in the layout of the model's graph."""
    num_class = arg.model_args.get('num_class')
    found = {}
    if arg.phase == 'train':
        found['train'] = build('feeder', arg.feeder, arg.train_feeder_args)
        check_split(found['train'], 'training', num_class)
        check_batch_size(arg.batch_size, world, len(found['train']))
    found['test'] = build('feeder', arg.feeder, arg.test_feeder_args)
    check_split(found['test'], 'test', num_class)
    for split, dataset in found.items():
        check_layout(dataset, f'{split}_feeder_args', model, arg.model_args.get('graph'))
    return found


def data_loaders(arg, sets, world, device, shuffle):
    """{'train': ..., 'test': ...} loaders of the `datasets`. The training order comes from the `shuffle` generator
    (DDP: the DistributedSampler's, from the seed); loader workers are started afresh each epoch, seeded from that
    epoch's shuffle generator."""
    loader_args = dict(num_workers=min(arg.num_worker, os.cpu_count() or 1), pin_memory=device.type == 'cuda')
    loaders = {}
    if 'train' in sets:
        sampler = torch.utils.data.distributed.DistributedSampler(sets['train'], seed=arg.seed) if world > 1 else None
        loaders['train'] = torch.utils.data.DataLoader(
            sets['train'], batch_size=arg.batch_size // world, shuffle=sampler is None, sampler=sampler,
            drop_last=True, generator=shuffle, **loader_args)
    loaders['test'] = torch.utils.data.DataLoader(sets['test'], batch_size=arg.test_batch_size, shuffle=False,
                                                  drop_last=False, **loader_args)
    return loaders


def data_warnings(arg, sets):
    """Warnings about legal but surprising data: the feeders' notes (each once: both splits may read one file), and
    a test split holding samples of the training split."""
    found = [note for dataset in sets.values() for note in dataset.notes]
    if 'train' in sets:
        trained = {str(name) for name in sets['train'].sample_name}
        shared = [str(name) for name in sets['test'].sample_name if str(name) in trained]
        if shared:
            source = arg.test_feeder_args.get('ann_file', arg.test_feeder_args.get('data_path', arg.feeder))
            found.append(f'{source}: {len(shared)} of the {len(sets["test"].label)} test samples are in the training '
                         f'split too (e.g. {shared[0]!r}): their accuracy measures no new data')
    return list(dict.fromkeys(found))


def check_layout(dataset, where, model, graph_name):
    """The feeder's keypoint layout (its bones) must be the model's graph's."""
    ours, theirs = getattr(dataset, 'layout', None), getattr(getattr(model, 'graph', None), 'layout', None)
    if ours is None or theirs is None or (ours.num_node, ours.bone_pairs) == (theirs.num_node, theirs.bone_pairs):
        return
    raise ValueError(f'{where} layout {ours.name!r} ({ours.num_node} joints) and model_args graph {graph_name} layout '
                     f'{theirs.name!r} ({theirs.num_node} joints) differ in their edges: the model would read the '
                     f'data\'s joints and bones on another skeleton; give both the same layout (a YAML anchor, '
                     f'docs/custom-data.md)')


def check_split(dataset, split, num_class):
    """A split must have samples, and labels in 0..num_class-1."""
    labels = np.asarray(dataset.label)
    if len(labels) == 0:
        raise ValueError(f'the {split} split is empty ({type(dataset).__module__}): check the feeder arguments')
    if num_class is not None and (labels.min() < 0 or labels.max() >= num_class):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise ValueError(f'the {split} split has label {bad}, outside 0..{num_class - 1} (model_args num_class '
                         f'{num_class})')


def check_batch_size(batch_size, world, samples):
    """The global batch splits evenly over the processes, and the training set holds at least one full batch."""
    if batch_size % world:
        raise ValueError(f'batch_size {batch_size} is not divisible by {world} processes')
    if samples < batch_size:
        raise ValueError(f'batch_size {batch_size} is larger than the training set ({samples} samples): no full '
                         f'batch, nothing would be trained')
