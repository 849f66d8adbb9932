"""Command line and config: the released scripts' arguments, same names, same precedence
(command line > config file > defaults), plus a few additions marked below."""
import argparse
import math
import os
import sys

import yaml

import specs
from lstbase.arguments import ArgumentParser
from lstbase.files import plain, read_text, write_text
from torchlight import DictAction, import_class, str2bool



def script_specs(family):
    """The datasets the released script main_multipart_<family>.py trains; main.py (family None) trains any."""
    return tuple(name for name, spec in specs.SPECS.items()
                 if family is None or spec.script == f'main_multipart_{family}.py')


def get_parser(family=None):
    p = ArgumentParser(description='LST: language supervised training for skeleton action recognition',
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--work-dir', default='./work_dir/temp', help='the work folder for storing results')
    p.add_argument('--model-saved-name', '-model_saved_name', default='',
                   help='accepted as released (one dash); unused: weights go to the work dir')
    p.add_argument('--config', default=None, help='path to the configuration file')
    p.add_argument('--phase', default='train', choices=['train', 'test'], help='train or test')
    p.add_argument('--save-score', type=str2bool, default=False, help='store the classification scores')
    p.add_argument('--seed', type=int, default=1, help='random seed')
    p.add_argument('--log-interval', type=int, default=100, help='iterations between log lines')
    p.add_argument('--save-interval', type=int, default=1, help='epochs between saved weights')
    p.add_argument('--save-epoch', type=int, default=30, help='the first epoch whose weights are saved '
                   '(the best epoch is always saved)')
    p.add_argument('--eval-interval', type=int, default=5, help='accepted as released; evaluation runs every epoch')
    p.add_argument('--print-log', type=str2bool, default=True, help='write log.txt')
    p.add_argument('--show-topk', type=int, default=[1, 5], nargs='+', help='which top-k accuracies to show')
    p.add_argument('--feeder', default='feeder.feeder', help='data loader class')
    p.add_argument('--num-worker', type=int, default=32, help='data loader workers (capped at the CPU count)')
    p.add_argument('--train-feeder-args', action=DictAction, default=dict(), help='training feeder arguments')
    p.add_argument('--test-feeder-args', action=DictAction, default=dict(), help='test feeder arguments')
    p.add_argument('--model', default=None, help='model class, e.g. model.ctrgcn.Model_lst_4part')
    p.add_argument('--model-args', action=DictAction, default=dict(), help='model arguments')
    p.add_argument('--weights', default=None, help='weights to initialise the model with (any .pt state dict)')
    p.add_argument('--ignore-weights', type=str, default=[], nargs='+', help='weight names to skip when loading')
    p.add_argument('--base-lr', type=float, default=0.001, help='initial learning rate')
    p.add_argument('--step', type=int, default=[20, 40, 60], nargs='+', help='epochs where the lr decays')
    p.add_argument('--device', type=device_index, default=0, nargs='+',
                   help='GPU indexes, or cpu (the CPU is also used when there is no CUDA device)')
    p.add_argument('--optimizer', default='SGD', choices=['SGD', 'Adam'], help='optimizer')
    p.add_argument('--nesterov', type=str2bool, default=False, help='use nesterov momentum')
    p.add_argument('--batch-size', type=int, default=256, help='training batch size (global, over all processes)')
    p.add_argument('--test-batch-size', type=int, default=256, help='test batch size')
    p.add_argument('--start-epoch', type=int, default=0, help='first epoch (a resumed run starts after its last)')
    p.add_argument('--num-epoch', type=int, default=80, help='stop training after this epoch')
    p.add_argument('--weight-decay', type=float, default=0.01, help='weight decay')
    p.add_argument('--lr-decay-rate', type=float, default=0.1, help='lr decay factor at each step')
    p.add_argument('--warm_up_epoch', type=int, default=0, help='epochs of linear lr warm-up')
    p.add_argument('--loss-alpha', type=float, default=None,
                   help='weight of the text loss (default: the dataset\'s as released: NTU 0.8, NW-UCLA 1.0)')
    p.add_argument('--dataset', default=None, choices=sorted(specs.SPECS),
                   help='what the data is (descriptions, layout, labels); default: told by the feeder and num_class')
    # Beyond the release.
    p.add_argument('--te-lr-ratio', type=float, default=0,
                   help='0 (default): frozen text encoder, features from the cached bank. > 0: fine-tune the text '
                        'encoder every step with lr = base_lr * ratio, as the release does (its default was 1)')
    p.add_argument('--text-weights', default=None,
                   help='local checkpoint for the first text head (a CLIP .pt), loaded without the checksum')
    p.add_argument('--text-cache-dir', default=os.path.join(os.path.expanduser('~'), '.cache', 'lst', 'text_bank'),
                   help='where the frozen text feature banks are kept')
    p.add_argument('--text-dir', default=None, help='folder of description files (default: text/)')
    p.add_argument('--part-text', type=str2bool, default=True,
                   help='False: prompt groups 1-4 are the class name alone, without the body-part descriptions '
                        '(an ablation)')
    p.add_argument('--classes', type=int, nargs='+', default=None,
                   help='the dataset\'s classes (label indexes) this run trains and tests on, in the order of its '
                        'labels: the feeders keep their samples alone, the descriptions and names are theirs')
    p.add_argument('--unseen-classes', type=int, nargs='+', default=None,
                   help='the seen/unseen protocol: train on the other classes (nothing of these is read), and the '
                        'test phase scores these by their descriptions (zero_shot.json)')
    p.add_argument('--held-out', type=float, default=0.1,
                   help='with --unseen-classes: the share of each seen class\'s training samples never trained on, '
                        'which choose the generalised zero-shot bias')
    p.add_argument('--init-classifier', default='weights', choices=['weights', 'text', 'random'],
                   help='the classifier of the --weights model: as the file has it, from the run\'s class '
                        'descriptions in the model\'s text space (new classes), or random')
    p.add_argument('--resume', default='auto',
                   help="'auto' (default): continue from <work-dir>/checkpoint.pt if it exists; 'no': start "
                        "afresh; or a path to a checkpoint.pt")
    p.add_argument('--amp', type=str2bool, default=True, help='mixed precision (CUDA only)')
    return p


def load_config(path, including=()):
    """A config file's mapping. `base: PATH` (relative to the file) takes another config's values, which this one's
    replace key by key (a dict value, such as the feeder or model arguments, merged into the base's)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f'config file {path!r} not found')
    try:
        config = yaml.safe_load(read_text(path, 'a YAML config')) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f', line {mark.line + 1}' if mark else ''
        raise ValueError(f'{path}{where}: not valid YAML ({getattr(exc, "problem", None) or exc})') from None
    if not isinstance(config, dict):
        raise ValueError(f'{path}: expected a mapping of argument names to values')
    if 'base' not in config:
        return config
    base = os.path.join(os.path.dirname(path), str(config.pop('base')))
    if os.path.exists(base) and any(os.path.samefile(base, p) for p in (path, *including)):
        raise ValueError(f'{path}: base {base} includes itself')
    merged = load_config(base, (path, *including))
    for key, value in config.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = dict(merged[key], **value) if both_dicts else value
    return merged


def device_index(text):
    if str(text).lower() == 'cpu':
        return 'cpu'
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a GPU index or cpu, got {text!r}') from None


def check_config_value(action, value, path):
    """A config file's value, checked and converted exactly as the same value given on the command line."""
    if isinstance(action, DictAction):
        if not isinstance(value, dict):
            raise ValueError(f'{path}: {action.dest}: expected a mapping, got {value!r}')
        return value
    if action.nargs in ('+', '*') and value is not None:     # None: the default, as a run's config.yaml saves it
        return [_convert(action, v, path) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return _convert(action, value, path)


def _convert(action, value, path):
    key = action.dest
    if action.type is not None and value is not None:
        if action.type is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f'{path}: {key}: expected an integer, got {value!r}')
            value = int(value)
        elif not (action.type is str2bool and isinstance(value, bool)):
            try:
                value = action.type(value)
            except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
                raise ValueError(f'{path}: {key}: {exc}') from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f'{path}: {key}: {value!r} is not one of {", ".join(map(str, action.choices))}')
    return value


POSITIVE = dict(log_interval=1, save_interval=1, eval_interval=1, batch_size=1, test_batch_size=1, num_epoch=1,
                num_worker=0, warm_up_epoch=0, start_epoch=0)
CONFIG_FILE = 'config.yaml'                                # a training run's record in its work dir
# Finite and >= 0: a NaN learning rate would otherwise be caught by the loss check only, after the run's files are
# written, and a negative one by the optimiser, in words that name no argument.
NON_NEGATIVE = ('base_lr', 'weight_decay', 'lr_decay_rate', 'loss_alpha', 'te_lr_ratio')
SEEDS = 2 ** 32                                            # numpy's seeds are below this


def check_values(args):
    """The arguments' values, whether from the command line or the config, each in its range."""
    for key, least in POSITIVE.items():
        if getattr(args, key) < least:
            raise ValueError(f'{key} {getattr(args, key)}: expected at least {least}')
    for key in NON_NEGATIVE:
        value = getattr(args, key)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f'{key} {value}: expected a finite number >= 0')
    if not 0 <= args.seed < SEEDS:
        raise ValueError(f'seed {args.seed}: expected 0 .. 2**32 - 1')
    if min(args.show_topk) < 1:
        raise ValueError(f'show_topk {args.show_topk}: expected k >= 1 (top-0 would count every sample right)')


def layout_hints(args):
    """(layout, where) pairs for the released graph and model classes that were made for one layout (a graph's
    `layout_name`, an LST class's named joint groups such as 'ucla_joint')."""
    hints = []
    for where, name, package in (('model_args graph', args.model_args.get('graph'), 'graph'),
                                 ('model', args.model, 'model')):
        try:
            cls = import_class(name, (package,))
        except ImportError:                                  # reported in one line when the class is built
            continue
        layout = getattr(cls, 'layout_name', None) or str(getattr(cls, 'joint_groups', '')).rpartition('_')[0]
        if layout:
            hints.append((layout, f'{where} {name}'))
    return hints


def resolve_dataset(args, family):
    """Set args.dataset (and the dataset's loss weight when none is given) and check that the script, the config's
    classes and its graph fit it: the ucla script with an NTU config would train with the other's descriptions."""
    num_class = args.model_args.get('num_class')
    if num_class is not None and (type(num_class) is not int or num_class < 2):
        raise ValueError(f'model_args num_class {num_class!r}: expected a whole number of classes, at least 2')
    spec = specs.of_config(args.dataset, args.feeder, num_class, among=script_specs(family) if family else None)
    if spec.name not in script_specs(family):
        script = f'main_multipart_{family}.py'
        raise ValueError(f'{"dataset " + args.dataset if args.dataset else "feeder " + str(args.feeder)} is for '
                         f'{spec.title}: run {spec.script} (or main.py) with this config, not {script}')
    for layout, where in layout_hints(args):
        if layout != spec.layout:
            raise ValueError(f'{where} is for the {layout} layout, but the config\'s data is {spec.title} ({spec.layout} '
                             f'layout): give the graph and model of its layout')
    if spec.num_class is None and num_class is None:
        raise ValueError(f'model_args num_class: needed for {spec.title} (the number of your classes)')
    if spec.num_class is not None and num_class is not None and num_class > spec.num_class:
        raise ValueError(f'model_args num_class {num_class}: {spec.title} has {spec.num_class} classes')
    args.dataset = spec.name
    if args.loss_alpha is None:
        args.loss_alpha = spec.loss_alpha


def whole_set(args):
    """The number of classes of the run's dataset: its spec's, or (your own) its label map's."""
    from text.prompts import load_label_map
    return specs.get(args.dataset).num_class or len(load_label_map(args.dataset, args.text_dir))


def check_indexes(flag, classes, total=None):
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0 or \
            (total is not None and max(classes) >= total):
        within = f' of the {total} classes (0..{total - 1})' if total is not None else ''
        raise ValueError(f'{flag} {" ".join(map(str, classes))}: expected distinct class indexes{within}')


def apply_protocol(args):
    """--unseen-classes: the run's classes (--classes) are the others, in the dataset's order, and its training
    split sets a --held-out share of each aside (never trained on: what chooses the generalised zero-shot bias)."""
    if not args.unseen_classes:
        return
    total = whole_set(args)
    check_indexes('--unseen-classes', args.unseen_classes, total)
    seen = [c for c in range(total) if c not in args.unseen_classes]
    if len(seen) < 2:
        raise ValueError(f'--unseen-classes: {len(seen)} seen class(es) left of {total}; training needs two')
    if args.classes is not None and args.classes != seen:
        raise ValueError(f'--classes {" ".join(map(str, args.classes))} with --unseen-classes: the run\'s classes are '
                         f'the seen ones ({" ".join(map(str, seen))}); give one of the two')
    if args.te_lr_ratio > 0:
        raise ValueError(f'--unseen-classes with --te-lr-ratio {args.te_lr_ratio}: the test phase scores the classes '
                         f'with the frozen text encoder, and the weights files do not hold a trained one')
    if not 0 < args.held_out < 1:
        raise ValueError(f'--held-out {args.held_out}: expected a share of the seen training samples, 0 < share < 1')
    args.classes = seen
    args.train_feeder_args['hold_out'] = args.held_out


def apply_classes(args):
    """--classes: both feeders keep those classes' samples, labelled in that order, and the model has as many
    classes (model_args num_class, when given, is theirs or that of a set holding them)."""
    given = {flag: getattr(args, flag).get('classes') for flag in ('train_feeder_args', 'test_feeder_args')}
    for flag, classes in given.items():
        if classes is not None and classes != args.classes:
            raise ValueError(f'{flag} classes {classes}: the run\'s classes are set with --classes (the descriptions '
                             f'and names follow them), not in the feeder arguments')
    if args.classes is None:
        return
    check_indexes('--classes', args.classes)
    num_class = args.model_args.get('num_class')
    if num_class is not None and num_class != len(args.classes) and num_class <= max(args.classes):
        raise ValueError(f'--classes {" ".join(map(str, args.classes))} name class {max(args.classes)}, but '
                         f'model_args num_class is {num_class}')
    for flag in given:
        getattr(args, flag)['classes'] = list(args.classes)
    args.model_args['num_class'] = len(args.classes)


def parse_args(family=None, argv=None):
    """Parse with the config file's values as defaults, each checked like the command line's; an unknown config
    key, a value of the wrong type or choice, or a config of another dataset than the script's (`family`: 'ntu' for
    main_multipart_ntu.py, 'ucla' for main_multipart_ucla.py, None for main.py) is an error naming it."""
    parser = get_parser(family)
    first = parser.parse_args(argv)
    if first.config:
        config = load_config(first.config)
        actions = {a.dest: a for a in parser._actions}
        unknown = sorted(k for k in config if k.replace('-', '_') not in actions)
        if unknown:
            raise ValueError(f'{first.config}: unknown key(s) {", ".join(unknown)}; valid keys: '
                             f'{", ".join(sorted(k for k in actions if k != "help"))}')
        parser.set_defaults(**{k.replace('-', '_'): check_config_value(actions[k.replace('-', '_')], v, first.config)
                               for k, v in config.items()})
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error('no model: give --model or a config that names one')
    if not isinstance(args.device, list):
        args.device = [args.device]
    if 'cpu' in args.device and len(args.device) > 1:
        parser.error(f'--device {" ".join(map(str, args.device))}: cpu goes alone')
    check_values(args)
    resolve_dataset(args, family)
    apply_protocol(args)
    apply_classes(args)
    if args.init_classifier != 'weights' and not args.weights:
        raise ValueError(f'--init-classifier {args.init_classifier}: sets the classifier of a trained model, given '
                         f'with --weights')
    return args


def input_files(arg):
    """(what, path) of every file the run reads by name: its config, weights, training state to resume from, text
    encoder weights and the feeders' data files."""
    files = [('--config', arg.config), ('--weights', arg.weights), ('--text-weights', arg.text_weights),
             ('--resume', arg.resume if os.path.isfile(str(arg.resume)) else None)]
    for flag in ('train_feeder_args', 'test_feeder_args'):
        files += [(f'{flag} {key}', value) for key, value in getattr(arg, flag).items()
                  if isinstance(value, str) and os.path.isfile(value)]
    return [(what, path) for what, path in files if path]


def save_config(args, work_dir, name=CONFIG_FILE):
    """<work_dir>/config.yaml: every argument, with the command line on top (as released)."""
    # plain types only: a tuple argument would be dumped as !!python/tuple, which yaml.safe_load then refuses
    text = f"# command line: {' '.join(sys.argv)}\n\n" + yaml.safe_dump(plain(vars(args)))
    write_text(os.path.join(work_dir, name), text)
