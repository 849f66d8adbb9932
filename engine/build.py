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


def data_loaders(arg, world, device, shuffle):
    """{'train': ..., 'test': ...} (no 'train' in the test phase). The training order comes from the `shuffle`
    generator (DDP: the DistributedSampler's, from the seed); loader workers are started afresh each epoch, seeded
    from that epoch's shuffle generator."""
    loader_args = dict(num_workers=min(arg.num_worker, os.cpu_count() or 1), pin_memory=device.type == 'cuda')
    num_class = arg.model_args.get('num_class')
    loaders = {}
    if arg.phase == 'train':
        train_set = build('feeder', arg.feeder, arg.train_feeder_args)
        check_split(train_set, 'training', num_class)
        check_batch_size(arg.batch_size, world, len(train_set))
        sampler = torch.utils.data.distributed.DistributedSampler(train_set, seed=arg.seed) if world > 1 else None
        loaders['train'] = torch.utils.data.DataLoader(
            train_set, batch_size=arg.batch_size // world, shuffle=sampler is None, sampler=sampler, drop_last=True,
            generator=shuffle, **loader_args)
    test_set = build('feeder', arg.feeder, arg.test_feeder_args)
    check_split(test_set, 'test', num_class)
    loaders['test'] = torch.utils.data.DataLoader(test_set, batch_size=arg.test_batch_size, shuffle=False,
                                                  drop_last=False, **loader_args)
    return loaders


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
