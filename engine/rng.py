"""The run's random streams: the global generators (model initialisation, augmentation) seeded once, and streams of
their own for the training order and the prompt draws, all saved in the training state so a resumed run goes on
exactly as an uninterrupted one."""
import random

import numpy as np
import torch

SHUFFLE, TEXT = 1, 2                   # the run's own streams


def init_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True


def seeded_generator(seed, stream):
    """A CPU generator of its own for one random stream of the run (shuffle, text prompts), from the run's seed."""
    return torch.Generator().manual_seed(seed * 1000 + stream)


def run_generators(seed):
    """Shuffle and prompt draws from generators of their own, so that runs differing in one setting (e.g. loss_alpha)
    see the same batches in the same order, whatever else consumes random numbers."""
    return dict(shuffle=seeded_generator(seed, SHUFFLE), text=seeded_generator(seed, TEXT))


def seed_epoch(generator, seed, epoch):
    """Each epoch's order (and the loader workers' seeds) from (seed, epoch) alone: the same after a resume."""
    generator.manual_seed(seed * 1000 + SHUFFLE + 100003 * (epoch + 1))


def rng_state(generators):
    """Every random state of the run in plain types and tensors (loadable with weights_only=True)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state['state']['key'] = numpy_state['state']['key'].tolist()
    return dict(python=random.getstate(), numpy=numpy_state, torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                generators={name: g.get_state() for name, g in generators.items()})


def set_rng_state(state, generators):
    random.setstate(state['python'])
    numpy_state = state['numpy']
    if isinstance(numpy_state, dict):
        numpy_state = dict(numpy_state, state=dict(numpy_state['state'],
                                                   key=np.asarray(numpy_state['state']['key'], dtype=np.uint32)))
    np.random.set_state(numpy_state)
    torch.set_rng_state(state['torch'])
    if state.get('cuda') and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    for name, value in state.get('generators', {}).items():
        generators[name].set_state(value)
