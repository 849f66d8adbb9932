"""A trained model and the files it reads, shared by tools/predict.py, tools/visualize.py and tools/export.py.

A stream is a (config, weights) pair: the config (a work dir's `config.yaml` or a released one) names the model,
the feeder and its test-time arguments (crop, window, modality); the weights are a state dict (a run's
`runs-<epoch>-<step>.pt` or a released checkpoint) or a model written by tools/export.py (TorchScript or ONNX).

Input files go through the project's own code: NTU `.skeleton` files through the preprocessing's three steps
(`preprocess.ntu.preprocess_file`), NW-UCLA `.json` files through the feeder's reader, and every sample through the
test feeder of the config (`Feeder(**test_feeder_args, samples=...)`), so a file of a test split gets exactly the
input, hence the logits, of the test phase.
"""
import copy
import os
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, 'torchlight')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from engine import outputs  # noqa: E402
from engine.args import load_config  # noqa: E402
from engine.safe_load import load_torch  # noqa: E402
from engine.trainer import build, strip_module  # noqa: E402
from feeders import feeder_ntu, feeder_ucla  # noqa: E402
from model.ctrgcn import PART_HEAD_ORDER, LSTModel, Model  # noqa: E402
from preprocess import ntu  # noqa: E402
from text.prompts import dataset_for, load_label_map  # noqa: E402
from torchlight import import_class  # noqa: E402

EXTENSIONS = ('.skeleton', '.json', '.npy')
# layout: (joints V, persons M) of the model input
LAYOUTS = {'ntu': (feeder_ntu.NUM_JOINTS, feeder_ntu.NUM_PERSONS), 'ucla': (feeder_ucla.NUM_JOINTS, 1)}
TRAINING_ONLY = ('part_list', 'linear_head', 'logit_scale') + tuple(f'{p}_joints' for p in PART_HEAD_ORDER)


class UsageError(ValueError):
    """A user's mistake (file, argument): reported as one line, without a traceback."""


def layout_of(dataset):
    return 'ucla' if dataset == 'ucla' else 'ntu'


def write_atomically(path, write, check=None):
    """`write(tmp)`, `check(tmp)` when given, then rename to `path`: an interruption or a failed check never leaves
    half a file or replaces a good one (the temporary name keeps the extension, which some writers go by)."""
    stem, extension = os.path.splitext(path)
    tmp = f'{stem}.tmp{extension}'
    try:
        write(tmp)
        if check:
            check(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------------------------------------ input files
@dataclass
class Sample:
    path: str
    joints: np.ndarray        # C, T, V, M as the feeder holds it before its test-time transform
    dataset: str              # 'ntu60', 'ntu120' or 'ucla': how it was read
    label: int = None         # from the file name, when it follows the dataset's naming

    @property
    def name(self):
        return os.path.splitext(os.path.basename(self.path))[0]

    @property
    def layout(self):
        return layout_of(self.dataset)


def label_from_name(stem, dataset):
    """The class index encoded in an NTU (`S001C001P001R001A013`) or NW-UCLA (`a05_s01_e00_v03`) name, or None."""
    try:
        if dataset == 'ucla':
            action = feeder_ucla.parse_name(stem)[0]
            return feeder_ucla.ACTIONS.index(action) if action in feeder_ucla.ACTIONS else None
        return ntu.parse_name(stem)['action'] - 1
    except ValueError:
        return None


def read_sample(path, dataset=None):
    """One input file as a Sample. `dataset` ('ntu60', 'ntu120', 'ucla') is the model's; None: from the file."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in EXTENSIONS:
        raise UsageError(f'{path}: unknown input type {extension!r}; expected NTU .skeleton, NW-UCLA .json or '
                         f'a .npy array C,T,V,M')
    if not os.path.isfile(path):
        raise UsageError(f'{path}: file not found')
    if extension == '.npy':
        joints = read_array(path, dataset)
        dataset = dataset or ('ucla' if joints.shape[2] == LAYOUTS['ucla'][0] else 'ntu60')
    else:
        wanted = 'ntu' if extension == '.skeleton' else 'ucla'
        if dataset and layout_of(dataset) != wanted:
            raise UsageError(f'{path}: an {"NTU" if wanted == "ntu" else "NW-UCLA"} file, but the model was trained '
                             f'on {dataset}')
        dataset = dataset or ('ntu60' if wanted == 'ntu' else 'ucla')
        if wanted == 'ntu':
            joints = feeder_ntu.model_layout(ntu.preprocess_file(path, dataset)[None])[0]
        else:
            joints = feeder_ucla.load_sequence(path).transpose(2, 0, 1)[..., None]
    if not np.isfinite(joints).all():
        raise UsageError(f'{path}: holds NaN or Inf coordinates')
    if not joints.any():
        raise UsageError(f'{path}: every frame is zero (no skeleton)')
    return Sample(path, joints, dataset, label_from_name(os.path.splitext(os.path.basename(path))[0], dataset))


def read_array(path, dataset):
    """A .npy sample C,T,V,M (NTU: 3,T,25,2 preprocessed; NW-UCLA: 3,T,20,1, the JSON's coordinates)."""
    try:
        joints = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f'{path}: not a numpy array file ({exc})') from None
    shapes = [LAYOUTS[layout_of(dataset)]] if dataset else list(LAYOUTS.values())
    if joints.ndim != 4 or joints.shape[0] != 3 or joints.shape[2:] not in shapes or not joints.shape[1]:
        expected = ' or '.join(f'3,T,{v},{m}' for v, m in shapes)
        raise UsageError(f'{path}: array of shape {joints.shape}, expected C,T,V,M = {expected}')
    if not np.issubdtype(joints.dtype, np.floating):
        raise UsageError(f'{path}: array of type {joints.dtype}, expected floating-point coordinates')
    return joints


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
class InferenceNetwork(nn.Module):
    """Input N,C,T,V,M -> logits: a trained model without LST's training-only heads (global and part features).

    LST's logits are CTR-GCN's on the k-hop encoded input, so the network is the encoding and the backbone and
    classifier; other models (CTR-GCN, the baseline) are used as they are. The model is copied, not changed.
    """

    def __init__(self, model):
        super().__init__()
        self.lst = isinstance(model, LSTModel)
        self.model = copy.deepcopy(model)
        if self.lst:
            for name in TRAINING_ONLY:
                delattr(self.model, name)
        self.eval()

    def forward(self, x):
        if not self.lst:
            return self.model(x)
        encoded = torch.einsum('uv,nctvm->nctum', self.model.A_vector, self.model.check_input(x))
        return Model.forward(self.model, encoded)


class OnnxNetwork:
    """An exported .onnx model run by onnxruntime, called like the torch networks."""

    def __init__(self, path):
        ort = import_onnxruntime(f'--weights {path}')
        self.session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


def import_onnxruntime(why):
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f'{why}: onnxruntime is not installed (pip install onnxruntime)') from None
    return onnxruntime


def is_torchscript(path):
    """A TorchScript archive holds its code; a saved state dict does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any('/code/' in name for name in archive.namelist())


def build_model(config, config_path):
    for key in ('model', 'model_args'):
        if not config.get(key):
            raise UsageError(f'{config_path}: no `{key}`; expected a training config (e.g. <work_dir>/config.yaml)')
    try:
        return build('model', config['model'], config['model_args'])
    except (ImportError, ValueError) as exc:
        raise UsageError(f'{config_path}: {exc}') from None


def read_weights(path):
    """The state dict of a weights file (or of a training state's model), read without running code."""
    weights = load_torch(path, 'weights file')
    if isinstance(weights, dict) and 'model' in weights and 'optimizer' in weights:
        weights = weights['model']                                  # a checkpoint.pt: its model part
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise UsageError(f'--weights {path}: expected a state dict (parameter name -> tensor), e.g. '
                         f'<work_dir>/runs-<epoch>-<step>.pt')
    return weights


def load_weights(model, weights, path):
    """The state dict `weights` (read from `path`) into `model`, strictly: a partly matching checkpoint would give
    wrong predictions silently."""
    try:
        missing, unexpected = model.load_state_dict(strip_module(weights), strict=False)
    except RuntimeError as exc:                                     # same names, other shapes
        shapes = [line.strip() for line in str(exc).splitlines() if 'size mismatch' in line]
        raise UsageError(f'--weights {path} does not fit the config\'s {type(model).__name__}: '
                         f'{shapes[0] if shapes else exc}') from None
    if missing or unexpected:
        raise UsageError(f'--weights {path} does not fit the config\'s {type(model).__name__}: '
                         f'{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected '
                         f'(e.g. {unexpected[:2]})')
    return model.eval()


def trained_otherwise(config, weights):
    """How the weights' record (model, model arguments, input modality) differs from the config's; [] if it does
    not or when the weights carry no record (released checkpoints)."""
    saved = outputs.weights_info(weights)
    now = dict(model=config['model'], model_args=outputs.plain(config['model_args']),
               modality=outputs.modality(config['test_feeder_args']))
    return [f'{key}: {saved[key]!r} there, {now[key]!r} here' for key in now if key in saved and saved[key] != now[key]]


def load_network(config, config_path, weights_path):
    """The callable x -> logits of `weights_path`: a state dict in the config's model, or an exported model."""
    if not os.path.isfile(weights_path):
        raise UsageError(f'--weights {weights_path}: file not found')
    if weights_path.lower().endswith('.onnx'):
        return OnnxNetwork(weights_path)
    if is_torchscript(weights_path):
        return torch.jit.load(weights_path, map_location='cpu').eval()
    return trained_network(config, config_path, weights_path)


def trained_network(config, config_path, weights_path):
    """The InferenceNetwork of the config's model with the state dict `weights_path`."""
    weights = read_weights(weights_path)
    differences = trained_otherwise(config, weights)
    if differences:
        print(f'warning: {weights_path} was saved for another model or modality ({"; ".join(differences)})',
              file=sys.stderr)
    return InferenceNetwork(load_weights(build_model(config, config_path), weights, weights_path))


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


def class_names(dataset, num_class, text_dir=None):
    """Class names from the dataset's label map; 'class <i>' for a class set that has none."""
    try:
        return load_label_map(dataset, text_dir, num_class)
    except (ValueError, OSError):
        return [f'class {i}' for i in range(num_class)]


class Stream:
    """One trained stream: its test feeder and network, from a config and weights."""

    def __init__(self, config_path, weights_path):
        config = read_config(config_path)
        self.config_path, self.weights_path = config_path, weights_path
        try:
            self.feeder_class = import_class(config['feeder'], ('feeders',))      # importing runs module code
        except ImportError as exc:
            raise UsageError(f'{config_path}: {exc}') from None
        known = (feeder_ntu.Feeder, feeder_ucla.Feeder)
        if not isinstance(self.feeder_class, type) or not issubclass(self.feeder_class, known):
            raise UsageError(f'{config_path}: feeder {config["feeder"]} is neither the NTU nor the NW-UCLA feeder')
        self.feeder_args = dict(config['test_feeder_args'])
        self.num_class = config['model_args'].get('num_class', 60)
        self.dataset = dataset_for(self.num_class, ucla=issubclass(self.feeder_class, feeder_ucla.Feeder))
        self.text_dir = config.get('text_dir')
        # the test phase's batch size: the same kernels run, so a test sample's logits match bit for bit in practice
        self.batch_size = config.get('test_batch_size') or 256
        self.network = load_network(config, config_path, weights_path)

    @property
    def class_names(self):
        return class_names(self.dataset, self.num_class, self.text_dir)

    def inputs(self, samples):
        """The test feeder's output for `samples`: a batch N,C,T,V,M as the test phase gives the model."""
        if self.dataset == 'ucla':
            data = [s.joints[..., 0].transpose(1, 2, 0) for s in samples]       # T x 20 x 3, as the feeder reads
        else:
            data = [s.joints for s in samples]
        labels = [-1 if s.label is None else s.label for s in samples]
        feeder = self.feeder_class(**self.feeder_args, samples=(data, labels, [s.name for s in samples]))
        return torch.from_numpy(np.stack([feeder[i][0] for i in range(len(feeder))]))

    @torch.no_grad()
    def logits(self, samples):
        inputs = self.inputs(samples).float()
        batches = torch.split(inputs, self.batch_size)
        return torch.cat([self.network(batch).float() for batch in batches]).numpy()
