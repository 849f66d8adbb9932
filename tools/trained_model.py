"""A trained model and the files it reads, shared by tools/predict.py, tools/visualize.py and tools/export.py.

A stream is a (config, weights) pair: the config (a work dir's `config.yaml` or a released one) names the model,
the feeder and its test-time arguments (crop, window, modality); the weights are a state dict (a run's
`runs-<epoch>-<step>.pt` or a released checkpoint) or a model written by tools/export.py: ONNX (run by onnxruntime),
or TorchScript, which is a program (loading it runs the code it holds) and is loaded only when the user trusts it.

Input files go through the project's own code (`preprocess.convert.read_input`): NTU `.skeleton` files through the
preprocessing's three steps, NW-UCLA `.json` files through the feeder's reader, annotation files (pyskl's format) as
they are; each sample, held as an annotation, then through the test feeder of the config
(`Feeder(**test_feeder_args, samples=...)`), so a file of a test split gets exactly the input, hence the logits, of
the test phase.
"""
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, 'torchlight')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import specs  # noqa: E402
from engine.args import load_config  # noqa: E402
from engine.build import build  # noqa: E402
from engine.weights import load_weights, read_weights, trained_as, trained_otherwise  # noqa: E402
from lstbase.errors import import_optional  # noqa: E402
from lstbase.safe_load import is_torchscript  # noqa: E402
from preprocess import annotations  # noqa: E402
from preprocess.convert import INPUT_EXTENSIONS as EXTENSIONS, read_input  # noqa: E402
from preprocess.video import DEFAULT_MAX_PERSONS, LAYOUTS as VIDEO_LAYOUTS  # noqa: E402
from specs import layouts  # noqa: E402
from text.prompts import class_names, load_class_set  # noqa: E402
from torchlight import import_class  # noqa: E402

EXPORT_HINT = 'run `make install-export` (requirements-export.txt: onnx and onnxruntime that take protobuf 4.25)'
# the layout of a sample that no model tells: by its number of joints
LAYOUT_BY_JOINTS = {layout.num_node: name for name, layout in layouts.NAMED.items()}


class UsageError(ValueError):
    """A user's mistake (file, argument): reported as one line, without a traceback."""


def warn(message):
    """A legal but surprising input: one `warning:` line, and the command goes on."""
    print(f'warning: {message}', file=sys.stderr)


# ------------------------------------------------------------------------------------------------ input files
@dataclass(frozen=True)
class InputOptions:
    """What the command line says about reading the inputs: `split` and `samples` (frame_dirs, in the order given)
    pick samples of annotation files; `img_shape` (height, width) is the image that the pixels of a .npy sample of
    2-D keypoints are in (a .npy cannot hold it); `max_persons` the people followed in a video."""
    split: str = None
    samples: tuple = ()
    img_shape: tuple = None
    max_persons: int = DEFAULT_MAX_PERSONS


def add_input_options(parser):
    parser.add_argument('--split', help='annotation files: the samples of this split (default: every sample)')
    parser.add_argument('--samples', nargs='+', metavar='NAME', help='annotation files: these samples (frame_dir)')
    parser.add_argument('--img-shape', nargs=2, type=int, metavar=('HEIGHT', 'WIDTH'),
                        help='.npy inputs of a 2-D model (x, y in pixels [, score]): the size of their image')
    parser.add_argument('--max-persons', type=int, default=DEFAULT_MAX_PERSONS,
                        help=f'videos: people followed (default {DEFAULT_MAX_PERSONS}; tools/extract_pose.py)')


def input_options(parser, args):
    if args.img_shape and min(args.img_shape) < 1:
        parser.error(f'--img-shape {" ".join(map(str, args.img_shape))}: expected a height and a width in pixels')
    if args.max_persons < 1:
        parser.error(f'--max-persons {args.max_persons}: expected at least 1')
    return InputOptions(args.split, tuple(args.samples or ()), tuple(args.img_shape) if args.img_shape else None,
                        args.max_persons)


def is_annotation_file(path):
    return path.lower().endswith('.pkl')


@dataclass
class Sample:
    path: str
    annotation: dict          # the sample in pyskl's annotation format (keypoint M x T x V x C, ...)
    dataset: str = None       # the dataset its file format implies (NTU, NW-UCLA), or None
    label: int = None         # from the annotation or the file name, when known

    @property
    def name(self):
        return self.annotation['frame_dir']

    @property
    def where(self):
        """Its file, and for a sample of an annotation file its name too: `ann.pkl:S001C001P001R001A001`."""
        return f'{self.path}:{self.name}' if is_annotation_file(self.path) else self.path

    @property
    def joints(self):
        """C, T, V, M coordinates to draw (2-D: x, y in pixels with y pointing up, like the 3-D data)."""
        keypoint = np.asarray(self.annotation['keypoint'], dtype=np.float64)
        if keypoint.shape[-1] == 2:
            keypoint = keypoint * np.array([1, -1])
        return keypoint.transpose(3, 1, 2, 0)

    @property
    def layout(self):
        """The keypoint layout of its number of joints (None for a set no layout has)."""
        return LAYOUT_BY_JOINTS.get(np.shape(self.annotation['keypoint'])[2])


def read_samples(path, dataset=None, layout='coco', options=InputOptions(), dims=None):
    """The samples of one input file (an annotation file holds many: those `options` pick). `dataset`: the model's
    (how NTU files are padded, which file names tell a label); `layout`: the keypoints estimated in a video ('coco'
    or 'ntu'); `dims` 2: the model reads 2-D keypoints (a .npy's channels are then x, y [, score] in pixels). A file
    that cannot be read is a UsageError; its samples are checked one by one (`check_sample`)."""
    try:
        found, implied = read_input(path, dataset, layout, options.split, options.max_persons)
    except (ValueError, OSError) as exc:                 # the preprocessing's and the readers' one-line errors
        raise UsageError(str(exc) if path in str(exc) else f'{path}: {exc}') from None
    if not found:
        raise UsageError(f'{path}: holds no samples')
    if is_annotation_file(path) and options.samples:
        found = picked(found, options, path)
    if path.lower().endswith('.npy') and dims == 2:
        found = [pixel_keypoints(annotation, options.img_shape, path) for annotation in found]
    samples = []
    for annotation in found:
        label = annotation.get('label')
        if label is None:
            label = label_from_name(annotation['frame_dir'], dataset or implied)
        samples.append(Sample(path, annotation, implied, label))
    return samples


def picked(found, options, path):
    """The annotations `options.samples` names, in that order; an unknown name is an error showing a few known."""
    by_name = {annotation['frame_dir']: annotation for annotation in found}
    unknown = [name for name in options.samples if name not in by_name]
    if unknown:
        where = f'split {options.split!r} of {path}' if options.split else path
        known = ', '.join(map(repr, list(by_name)[:4])) + (', ...' if len(by_name) > 4 else '')
        raise UsageError(f'--samples {unknown[0]}: no such sample in {where}; it has {len(by_name)}: {known}')
    return [by_name[name] for name in options.samples]


def pixel_keypoints(annotation, img_shape, path):
    """A .npy sample for a 2-D model: its channels x, y in pixels of an image of `img_shape` and, when there is a
    third, the score."""
    if img_shape is None:
        raise UsageError(f'{path}: 2-D keypoints in pixels are read with the size of their image, which a .npy '
                         f'cannot hold: give --img-shape HEIGHT WIDTH')
    keypoint = annotation['keypoint']
    converted = dict(annotation, keypoint=keypoint[..., :2], img_shape=img_shape)
    if keypoint.shape[-1] == 3:
        converted['keypoint_score'] = keypoint[..., 2]
    return converted


def check_sample(sample):
    """A sample's keypoints (numbers of the format's shape, finite, not all zero, the image size of 2-D ones) and
    label (a class index, when it has one) as the feeders read them; UsageError naming the file and the sample
    otherwise."""
    annotation, path = sample.annotation, sample.path
    try:
        keypoint, _ = annotations.keypoints(annotation, path)
        if keypoint.shape[-1] == 2:
            annotations.image_shape(annotation, path)
        if annotation.get('label') is not None:
            annotations.label(annotation, path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not keypoint.any():
        raise UsageError(f'{sample.where}: every frame is zero (no skeleton)')


def label_from_name(stem, dataset):
    """The class index an NTU or NW-UCLA file name encodes (via the dataset's feeder), or None."""
    if dataset is None:
        return None
    reader = getattr(specs.get(dataset).feeder_module, 'label_from_name', None)
    return reader(stem) if reader else None


def find_inputs(paths):
    """The files named, and the input files (by extension) under the folders named, in order."""
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        for folder, _, names in sorted(os.walk(path)):
            found += [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(EXTENSIONS)]
    return found


# ------------------------------------------------------------------------------------------------ networks
class OnnxNetwork:
    """An exported .onnx model run by onnxruntime, called like the torch networks. onnxruntime's errors derive from
    Exception alone (its classes cannot be named without it installed): a file it cannot read is a UsageError, an
    input it cannot run a RuntimeError, as TorchScript's."""

    def __init__(self, path):
        ort = import_onnxruntime(f'--weights {path}')
        try:
            self.session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        except Exception as exc:
            raise UsageError(f'--weights {path}: not a readable ONNX model ({last_line(exc)})') from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        try:
            return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])
        except Exception as exc:
            raise RuntimeError(last_line(exc)) from None


def last_line(exc):
    """What an error says in its last line (TorchScript's interpreter puts the failed operation's error there)."""
    lines = str(exc).strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


def import_onnxruntime(why):
    return import_optional('onnxruntime', why, EXPORT_HINT)


def is_exported(path):
    """A model written by tools/export.py (TorchScript or ONNX), not training weights."""
    return path.lower().endswith('.onnx') or is_torchscript(path)


def build_model(config, config_path):
    for key in ('model', 'model_args'):
        if not config.get(key):
            raise UsageError(f'{config_path}: no `{key}`; expected a training config (e.g. <work_dir>/config.yaml)')
    try:
        return build('model', config['model'], config['model_args'])
    except (ImportError, ValueError) as exc:
        raise UsageError(f'{config_path}: {exc}') from None


def load_network(config, config_path, weights_path, trust_code=False):
    """The callable x -> logits of `weights_path`: a state dict in the config's model (its inference pass, as the
    test phase runs it), or an exported model. A TorchScript file is a program: `torch.jit.load` runs its objects'
    `__setstate__` and its forward whatever code it holds, so it is loaded only with `trust_code`."""
    if not os.path.isfile(weights_path):
        raise UsageError(f'--weights {weights_path}: file not found')
    if weights_path.lower().endswith('.onnx'):
        return OnnxNetwork(weights_path)
    if is_torchscript(weights_path):
        if not trust_code:
            raise UsageError(f'--weights {weights_path}: a TorchScript program (tools/export.py writes them), and '
                             f'loading one runs the code it holds: give --trust-code if you trust where it comes '
                             f'from, or give the training weights (.pt state dict) instead')
        return torch.jit.load(weights_path, map_location='cpu').eval()
    return trained_model(config, config_path, weights_path).logits


@torch.no_grad()
def check_exported(network, model, frames, weights_path, config_path):
    """An exported network must take the input of the config's `model` (`frames` frames) and give its classes: one
    of another layout would fail at the first file, one of fewer classes spread its probabilities over the first
    class names without a word."""
    shape = (1, model.in_channels, frames, model.num_point, model.num_person)
    try:
        logits = network(torch.zeros(shape))
    except RuntimeError as exc:
        raise UsageError(f'--weights {weights_path} does not take the input of the model of {config_path} (N,C,T,V,M '
                         f'= N,{",".join(map(str, shape[1:]))}): an export of another model? '
                         f'({last_line(exc)})') from None
    if not torch.is_tensor(logits) or tuple(logits.shape) != (1, model.num_class):
        given = f'scores of shape {tuple(logits.shape)}' if torch.is_tensor(logits) else type(logits).__name__
        raise UsageError(f'--weights {weights_path} gives {given} for one sample, but the model of {config_path} has '
                         f'{model.num_class} classes (expected 1 x {model.num_class}): an export of another model?')


def trained_model(config, config_path, weights_path):
    """The config's model with the state dict `weights_path` (or a checkpoint.pt's model part), in eval mode. The
    file must fit the model exactly, nothing missing or left over: a partly matching checkpoint would give wrong
    predictions silently."""
    weights = read_weights(weights_path)
    differences = trained_otherwise(weights, trained_as(config['model'], config['model_args'],
                                                        config['test_feeder_args']))
    if differences:
        warn(f'{weights_path} was saved for another model or modality ({"; ".join(differences)})')
    model = build_model(config, config_path)
    try:
        load_weights(model, weights, weights_path, f'the config\'s {type(model).__name__}', config_path=config_path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return model.eval()


# ------------------------------------------------------------------------------------------------ inputs far out
FAR_OUTSIDE = 3.0       # root-mean-square z-score beyond which an input lies far outside the training data


class InputSpread:
    """How far the inputs of a trained model lie from its training data: the root-mean-square z-score, per sample,
    of what its first BatchNorm (`data_bn`, on the input itself) receives, against the running mean and variance it
    kept in training. A model's own test data gives about 1 or less (0.4 to 0.7 measured); keypoints of another
    camera framing under image-size normalisation gave 4.1 (tests/test_framing.py)."""

    def __init__(self, model):
        self.values = []
        norm = getattr(model, 'data_bn', None)
        if isinstance(norm, torch.nn.BatchNorm1d) and norm.running_var is not None:
            norm.register_forward_pre_hook(self._record)

    def _record(self, norm, inputs):
        x = inputs[0].float()                                    # N, M*V*C, T
        z = (x - norm.running_mean[:, None]) / torch.sqrt(norm.running_var[:, None] + norm.eps)
        self.values += z.pow(2).mean(dim=(1, 2)).sqrt().tolist()

    def take(self):
        """The values recorded since the last call (empty for a model without data_bn, e.g. an export)."""
        values, self.values = self.values, []
        return values


# ------------------------------------------------------------------------------------------------ streams
def read_config(path):
    try:
        config = load_config(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f'--config: {exc}') from None
    for key in ('feeder', 'test_feeder_args', 'model_args'):
        if not config.get(key):
            raise UsageError(f'{path}: no `{key}`; expected a training config (e.g. <work_dir>/config.yaml)')
    return config


def config_layout(config, spec):
    """The keypoint layout a config's model and feeder read: its graph's layout argument, else the dataset's."""
    graph_args = config['model_args'].get('graph_args') or {}
    try:
        return layouts.get(graph_args.get('layout') or spec.layout, 'model_args graph_args layout')
    except ValueError as exc:
        raise UsageError(f'{exc}') from None


class Stream:
    """One trained stream: its test feeder and network, from a config and weights (`trust_code`: TorchScript files
    may be loaded, see load_network)."""

    def __init__(self, config_path, weights_path, trust_code=False):
        config = read_config(config_path)
        self.config_path, self.weights_path = config_path, weights_path
        self.num_class = config['model_args'].get('num_class', 60)
        try:
            self.spec = specs.of_config(config.get('dataset'), config['feeder'], self.num_class)
            self.feeder_class = import_class(config['feeder'], ('feeders',))      # importing runs module code
        except (ImportError, ValueError) as exc:
            raise UsageError(f'{config_path}: {exc}') from None
        self.feeder_module = sys.modules[self.feeder_class.__module__]
        if not hasattr(self.feeder_module, 'from_annotation'):
            raise UsageError(f'{config_path}: feeder {config["feeder"]} cannot read single files (no from_annotation)')
        self.dataset = self.spec.name
        self.config = config
        self.class_set = None                                # the names of a class set scored instead (score_classes)
        self.layout = config_layout(config, self.spec)
        self.feeder_args = dict(config['test_feeder_args'])
        self.dims = self.feeder_args.get('dims')             # the pose feeder's 2 or 3; None: as the data has them
        self.text_dir = config.get('text_dir')
        self.num_person = config['model_args'].get('num_person', 2)             # CTR-GCN's default: NTU's two
        self.input_frames = self.feeder_module.input_frames(self.feeder_args)   # what the test feeder gives the model
        # the test phase's batch size: the same kernels run, so a test sample's logits match bit for bit in practice
        self.batch_size = config.get('test_batch_size') or 256
        self.network = load_network(config, config_path, weights_path, trust_code)
        self.spread = InputSpread(getattr(self.network, '__self__', self.network))
        if is_exported(weights_path):
            check_exported(self.network, build_model(config, config_path), self.input_frames, weights_path,
                           config_path)

    @property
    def class_names(self):
        if self.class_set is not None:
            return self.class_set
        return class_names(self.dataset, self.num_class, self.text_dir, warn, self.config.get('classes'))

    def score_classes(self, folder):
        """Score the classes of the class set in `folder` (text.prompts.load_class_set) by their descriptions, in the
        model's text space, instead of by its classifier: any classes, the trained ones or new ones
        (lstbase.zero_shot's RULE)."""
        from lstbase.zero_shot import combine
        from model.zero_shot import group_cosines, group_scales, require_text_space
        from text.bank import TextFeatureBank
        model = getattr(self.network, '__self__', None)
        if model is None:
            raise UsageError(f'--weights {self.weights_path}: an exported model has no text heads; --classes-text-dir '
                             f'needs the training weights (.pt)')
        try:
            require_text_space(model, '--classes-text-dir')
        except ValueError as exc:
            raise UsageError(f'{self.config_path}: {exc}') from None
        if self.config.get('te_lr_ratio'):
            raise UsageError(f'{self.config_path}: the model trained its text encoder (te_lr_ratio '
                             f'{self.config["te_lr_ratio"]}), which the weights file does not hold; --classes-text-dir '
                             f'scores classes with the frozen one')
        prompts = load_class_set(folder, self.config.get('part_text', True))
        cache = self.config.get('text_cache_dir') or os.path.join(os.path.expanduser('~'), '.cache', 'lst', 'text_bank')
        bank = TextFeatureBank.of_prompts(model.text_head, prompts, 'classes', cache, self.config.get('text_weights'),
                                          log=lambda line: None)
        features, scales = bank.class_features(), group_scales(model).numpy()
        self.network = lambda x: torch.from_numpy(combine(group_cosines(model, x, features).numpy(), scales))
        self.class_set = prompts.names

    @property
    def video_layout(self):
        """The keypoints to estimate in a video for this model: its layout's ('coco' 2-D or 'ntu' 3-D)."""
        return self.layout.name if self.layout.name in VIDEO_LAYOUTS else 'coco'

    def read(self, path, options=InputOptions()):
        """The samples of one input file, read for this model (read_samples), their labels the model's: a model of
        some of the dataset's classes (--classes) numbers them in their order, and has no label for the others."""
        samples = read_samples(path, self.dataset, self.video_layout, options, self.dims)
        classes = self.config.get('classes')
        for sample in samples if classes else ():
            sample.label = classes.index(sample.label) if sample.label in classes else None
        return samples

    def check(self, sample):
        """A sample that is not as the format says, or of another keypoint set or dimension than the model's, is an
        error naming the file (and the sample of an annotation file)."""
        check_sample(sample)
        _, _, joints, dims = np.shape(sample.annotation['keypoint'])
        if joints != self.layout.num_node:
            raise UsageError(f'{sample.path}: {sample.name} has {joints} keypoints per person, but the model of '
                             f'{self.config_path} reads the {self.layout.name} layout ({self.layout.num_node})')
        if self.dims and dims != self.dims:
            raise UsageError(f'{sample.where}: {dims}-D keypoints, but the model of {self.config_path} reads '
                             f'{self.dims}-D ones')

    def prepare(self, sample):
        """The test feeder's output for one sample (C,T,V,M), as the test phase gives it the model (the test
        transform of a sample depends on that sample alone); a sample it cannot take is an error naming its file."""
        self.check(sample)
        label = -1 if sample.label is None else sample.label
        try:
            data = self.feeder_module.from_annotation(sample.annotation)
            return self.feeder_class(**self.feeder_args, samples=([data], [label], [sample.name]))[0][0]
        except ValueError as exc:
            raise UsageError(f'{sample.where}: {exc}') from None

    @torch.no_grad()
    def run(self, inputs):
        """Logits of prepared inputs, in batches of the config's test batch size: the kernels of the test phase."""
        self.spread.take()
        batches = torch.split(torch.from_numpy(np.stack(inputs)).float(), self.batch_size)
        return torch.cat([self.network(batch).float() for batch in batches]).numpy()

    def logits(self, samples):
        return self.run([self.prepare(sample) for sample in samples])

    def far_outside(self):
        """For each input of the last run(): whether it lay far outside the model's training data (all False when
        the network cannot tell, e.g. an export)."""
        return [value > FAR_OUTSIDE for value in self.spread.take()]
