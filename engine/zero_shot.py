"""The seen/unseen protocol's test phase, and new classes' classifier from their text.

With --unseen-classes the test phase scores every class of the dataset by its descriptions in the model's text
space (model/zero_shot.py): the test split's samples of every class, and the seen classes' training samples held out
of training (--held-out), which choose the generalised zero-shot bias (lstbase/zero_shot.py). It writes
zero_shot.json (the measures, the chance levels, the other scoring rules) and zero_shot_scores.pkl (each sample's
cosines and the model's scales: what fusing streams needs, tools/reproduce.py).
"""
import contextlib
import importlib

import numpy as np
import torch

from engine.build import build, data_loaders
from lstbase import zero_shot
from lstbase.files import save_pickle, write_json
from model.zero_shot import group_cosines, group_scales, text_classifier
from text.prompts import class_names

RESULTS_FILE, SCORES_FILE = 'zero_shot.json', 'zero_shot_scores.pkl'


def protocol_sets(arg):
    """{'test': the test split, every class, the dataset's labels; 'held_out': the seen classes' held-out training
    samples, read as test samples} (feeders)."""
    test_args = {k: v for k, v in arg.test_feeder_args.items() if k != 'classes'}
    as_test = getattr(importlib.import_module(arg.feeder.rpartition('.')[0]), 'train_split_for_test', None)
    if as_test is None:
        raise ValueError(f'feeder {arg.feeder} cannot read its training split as test samples (no '
                         f'train_split_for_test): the held-out seen samples of --unseen-classes need it')
    held_out_args = dict(as_test(arg.train_feeder_args, test_args), classes=arg.classes, hold_out=arg.held_out,
                         held_out_only=True)
    sets = {'test': build('feeder', arg.feeder, test_args), 'held_out': build('feeder', arg.feeder, held_out_args)}
    if not len(sets['held_out']):
        raise ValueError(f'--held-out {arg.held_out} held out no seen training sample (each class\'s share rounds to '
                         f'0): nothing to choose the generalised bias on; give a larger share')
    return sets


def class_text(arg, model, device, log):
    """5 x classes x D: the text features of every class of the dataset, in the model's text space."""
    from text.bank import TextFeatureBank
    bank = TextFeatureBank.load_or_build(model.text_head, arg.dataset, arg.text_cache_dir, arg.text_weights, device,
                                         arg.text_dir, log=log, part_text=arg.part_text)
    return bank.class_features()


@torch.no_grad()
def cosines(model, loader, features, device):
    """(samples x 5 x classes cosines, labels) of a loader's samples."""
    model.eval()
    found, labels = [], []
    for data, label, _ in loader:
        found.append(group_cosines(model, data.to(device).float(), features).cpu().numpy())
        labels += [int(k) for k in label]
    return np.concatenate(found), np.asarray(labels)


def protocol_inputs(run):
    """(every class's text features, protocol_sets) of the test phase of a run (engine.trainer.Processor), read and
    checked before it writes anything."""
    arg = run.arg
    features = class_text(arg, run.model, run.device, run.log)
    sets = protocol_sets(arg)
    labels = np.asarray(sets['test'].label)
    for which, classes in (('unseen', arg.unseen_classes), ('seen', arg.classes)):
        if not np.isin(labels, classes).any():
            raise ValueError(f'the test split holds no sample of the {which} classes '
                             f'({" ".join(map(str, classes))}): nothing to measure them on')
    return features, sets


def protocol_test(run, features, sets):
    """The zero-shot and generalised zero-shot measures of the run's model (its --weights), written and logged;
    `features` and `sets` from protocol_inputs."""
    arg, log, model, device = run.arg, run.log, run.model, run.device
    found = {}
    for name, dataset in sets.items():
        loader = data_loaders(arg, {'test': dataset}, 1, device, None)['test']
        found[name] = cosines(model, loader, features, device)
    seen, unseen = list(arg.classes), sorted(arg.unseen_classes)
    held_cosines, held_labels = found['held_out']
    found['held_out'] = held_cosines, np.asarray(seen)[held_labels]         # the dataset's labels
    scales = group_scales(model).cpu().numpy()
    result = zero_shot.report([(found['test'][0], scales)], found['test'][1], [(found['held_out'][0], scales)],
                              seen, unseen)
    names = class_names(arg.dataset, features.shape[1], arg.text_dir)
    counts = dict(unseen_test=int(np.isin(found['test'][1], unseen).sum()),
                  seen_test=int(np.isin(found['test'][1], seen).sum()), held_out=len(held_labels))
    write_json(run.report.path(RESULTS_FILE), dict(result, weights=arg.weights, epoch=run.weights_epoch, seen=seen,
                                                   unseen=unseen, class_names=names, samples=counts))
    save_pickle(dict(scales=scales, seen=seen, unseen=unseen, class_names=names,
                     **{name: dict(names=[str(n) for n in sets[name].sample_name], cosines=c.astype(np.float32),
                                   labels=labels.tolist())
                        for name, (c, labels) in found.items()}), run.report.path(SCORES_FILE))
    log_result(log, result, counts, unseen)


def log_result(log, result, counts, unseen):
    generalised = result['generalised']
    log(f'Zero-shot top-1 on the {len(unseen)} unseen classes ({counts["unseen_test"]} test samples): '
        f'{100 * result["zero_shot"]:.2f}% (chance {100 * result["chance"]["zero_shot"]:.2f}%)')
    log(f'Generalised zero-shot, every class: seen {100 * generalised["seen"]:.2f}%, unseen '
        f'{100 * generalised["unseen"]:.2f}%, harmonic mean {100 * generalised["harmonic"]:.2f}% (seen classes\' '
        f'scores lowered by {generalised["bias"]:.3f}, chosen on {counts["held_out"]} held-out seen training '
        f'samples; without: harmonic mean {100 * result["uncalibrated"]["harmonic"]:.2f}%)')
    for rule, measures in result['alternatives'].items():
        log(f'\tscored by {rule}: zero-shot {100 * measures["zero_shot"]:.2f}%, harmonic mean '
            f'{100 * measures["harmonic"]:.2f}%')


@contextlib.contextmanager
def random_state_kept():
    """The global random states (which feeders' augmentation draws from) as they were before the block."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    np.random.set_state(state)


def classifier_from_text(model, bank, dataset, device, most=256):
    """--init-classifier text: the classifier of the run's classes from their descriptions (model.zero_shot), the
    global feature's norm measured on the first `most` training samples; the random states are left as they were, so
    that a run differs from its --init-classifier random pair in the classifier alone."""
    with random_state_kept():
        samples = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(min(most, len(dataset)))])
        text_classifier(model, bank.class_features(), samples.to(device).float())
