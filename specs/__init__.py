"""What the project knows of each dataset, in one place that every layer asks.

A `Spec` names a dataset's keypoint layout (`specs.layouts`), persons, description set, default class count, loss
weight, feeder and entry script. A `Benchmark` is a released split of a spec: where its configs and data are, and how
ensemble.py and tools/reproduce.py find its test labels. `custom` is any data in pyskl's annotation format, with the
layout, classes and descriptions its config gives.

This package imports nothing else of the project at import time (the graph and the model import it); the feeders
are imported only to read labels.
"""
import importlib
import os
from dataclasses import dataclass

from specs import layouts
from specs.layouts import Layout  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    layout: str                   # the default keypoint layout (a config may declare another for `custom`)
    num_person: int
    num_class: int                # None: the config's model_args num_class
    text_files: str               # descriptions: <text_dir>/<text_files>_{label_map,synonyms,parts}.txt
    text_classes: int             # classes in the whole description set (None: the model's)
    loss_alpha: float             # the released weight of the language loss
    feeder: str                   # module of the feeder class (`Feeder`); it defines split_labels(**feeder_args)
    script: str                   # the entry script that trains it as released
    # the release's score files keyed by position ('test_<i>') follow the data file's order (NTU); NW-UCLA's follow
    # a shuffled list of the release's own, so positions mean nothing there
    positional_scores: bool = False

    @property
    def feeder_module(self):
        return importlib.import_module(self.feeder)

    def split_labels(self, feeder_args):
        """(sample names, labels) of the split that `feeder_args` name, without loading the skeletons."""
        return self.feeder_module.split_labels(**feeder_args)

    def stream_args(self, stream):
        """Feeder arguments of a stream ('joint', 'bone', 'joint_vel', 'bone_vel') made by the feeder."""
        return dict(self.feeder_module.STREAM_ARGS[stream])

    def relocate(self, feeder_args, folder):
        """Feeder arguments that read the same data from `folder`."""
        return self.feeder_module.relocate(feeder_args, folder)


SPECS = {
    'ntu60': Spec('ntu60', 'NTU RGB+D 60', 'ntu', 2, 60, 'ntu120', 120, 0.8, 'feeders.feeder_ntu',
                  'main_multipart_ntu.py', positional_scores=True),
    'ntu120': Spec('ntu120', 'NTU RGB+D 120', 'ntu', 2, 120, 'ntu120', 120, 0.8, 'feeders.feeder_ntu',
                   'main_multipart_ntu.py', positional_scores=True),
    'ucla': Spec('ucla', 'NW-UCLA', 'ucla', 1, 10, 'ucla', 10, 1.0, 'feeders.feeder_ucla', 'main_multipart_ucla.py'),
    'custom': Spec('custom', 'your own data (pyskl annotation format)', 'coco', 2, None, 'custom', None, 0.8,
                   'feeders.feeder_pose', 'main.py'),
}
# the feeder module each spec reads with by default, to tell the spec of a config that names none
FEEDER_SPECS = {'feeders.feeder_ntu': ('ntu60', 'ntu120'), 'feeders.feeder_ucla': ('ucla',),
                'feeders.feeder_pose': ('custom',)}


def get(name):
    if isinstance(name, Spec):
        return name
    if name not in SPECS:
        raise ValueError(f'dataset {name!r}: unknown; known: {", ".join(SPECS)}')
    return SPECS[name]


def of_config(dataset=None, feeder=None, num_class=None, among=None):
    """The spec of a run: the config's `dataset`, else the one its feeder reads (NTU: 60 or 120 classes), else the
    one of `among` (the datasets a released script trains) that fits num_class."""
    if dataset:
        return get(dataset)
    names = FEEDER_SPECS.get(str(feeder or '').rsplit('.', 1)[0], among)
    if not names:
        raise ValueError(f'feeder {feeder!r}: cannot tell the dataset; set `dataset` in the config '
                         f'({", ".join(SPECS)})')
    fitting = [name for name in names if (num_class or 0) <= (SPECS[name].num_class or num_class or 0)]
    return SPECS[(fitting or names)[0]]


@dataclass(frozen=True)
class Benchmark:
    name: str                     # ensemble.py's --datasets name
    key: str                      # tools/reproduce.py's --benchmark name
    spec: str
    config_dir: str
    data: str                     # its data under the data folder (a file, or NW-UCLA's folder); None: the user's
    test_split: str
    lst_config: str = 'lst_{stream}.yaml'           # in config_dir: the LST config of a stream
    baseline_config: str = 'default.yaml'           # ... and CTR-GCN's (None: none)

    def config(self, arm, stream):
        """The config file of an arm ('ctrgcn' or an LST arm) and stream, under config_dir."""
        name = self.baseline_config if arm == 'ctrgcn' else self.lst_config
        return None if name is None else os.path.join(self.config_dir, name.format(stream=stream))

    def test_feeder_args(self, data_dir='data', folder=None):
        """The feeder arguments of the test split, with the data under `data_dir` (as released: data/ntu/...,
        data/NW-UCLA/all_sqe) or in `folder` (the folder that holds the data file, or NW-UCLA's JSON files)."""
        spec = get(self.spec)
        if spec.feeder == 'feeders.feeder_ucla':
            args = dict(root=os.path.join(data_dir, self.data), label_path=self.test_split, data_path='joint')
        else:
            args = dict(data_path=os.path.join(data_dir, self.data), split=self.test_split)
        return dict(args, **spec.relocate(args, folder)) if folder else args

    def test_labels(self, data_dir='data', folder=None):
        return get(self.spec).split_labels(self.test_feeder_args(data_dir, folder))


BENCHMARKS = {b.name: b for b in (
    Benchmark('ntu/xsub', 'ntu60-xsub', 'ntu60', 'config/nturgbd-cross-subject', 'ntu/NTU60_CS.npz', 'test'),
    Benchmark('ntu/xview', 'ntu60-xview', 'ntu60', 'config/nturgbd-cross-view', 'ntu/NTU60_CV.npz', 'test'),
    Benchmark('ntu120/xsub', 'ntu120-xsub', 'ntu120', 'config/nturgbd120-cross-subject', 'ntu120/NTU120_CSub.npz',
              'test'),
    Benchmark('ntu120/xset', 'ntu120-xset', 'ntu120', 'config/nturgbd120-cross-set', 'ntu120/NTU120_CSet.npz',
              'test'),
    Benchmark('NW-UCLA', 'ucla', 'ucla', 'config/ucla', os.path.join('NW-UCLA', 'all_sqe'), 'val'),
)}


# your own data in pyskl's format, with the configs of config/custom (tools/reproduce.py --ann-file, --text-dir)
CUSTOM_BENCHMARKS = {b.key: b for b in (
    Benchmark('custom-2d', 'custom-2d', 'custom', 'config/custom', None, 'val', 'lst_{stream}_2d.yaml',
              'ctrgcn_{stream}_2d.yaml'),
    Benchmark('custom-3d', 'custom-3d', 'custom', 'config/custom', None, 'val', 'lst_{stream}_3d.yaml', None),
)}
# what tools/reproduce.py's --benchmark names: the released benchmarks and your own data's
REPRODUCIBLE = {b.key: b for b in (*BENCHMARKS.values(), *CUSTOM_BENCHMARKS.values())}
