"""Class descriptions and LST's five prompt groups.

Files in `text/` (one class per line, in label order; drop in your own in the same format with --text-dir):
  <set>_label_map.txt   the class names
  <set>_synonyms.txt    `name,synonym,synonym,...`
  <set>_parts.txt       `name;head ...;hand ...;arm ...;hip ...;leg ...;foot ...`
where <set> is the dataset's description set (`specs`): `ntu120` (120 lines; NTU60 uses the first 60), `ucla`
(10 lines), or `custom` for your own classes (as many lines as the model has classes; `python -m text.describe`
helps write them). A model with fewer classes (`num_class`) uses the first lines; the files then need only that many.

Prompt groups, as released (Text_Prompt.py and the training loop of main_multipart_ntu.py): 0 = the class name or
one of its synonyms (drawn per sample and step), 1 = name + head, 2 = name + hand + arm, 3 = name + hip,
4 = name + leg + foot. Groups 1-4 supervise the part features [head, hand, hip, foot]; group 0 the global feature.
Fix: the release builds group 2 as name + ','.join(hand, arm), with no separator after the name
("drink waterhand grasps cup"); here the name is followed by a comma like in the other groups. Fields are joined
with ', ' where the release writes ','; CLIP's and MiniLM's tokenizers drop the space, so the tokens are the same.
"""
import glob
import os

import numpy as np
import torch

import specs
from lstbase.files import read_text, write_text

TEXT_DIR = os.path.dirname(os.path.abspath(__file__))
KINDS = ('label_map', 'synonyms', 'parts')
PARTS = ('head', 'hand', 'arm', 'hip', 'leg', 'foot')
GROUP_PARTS = {1: ('head',), 2: ('hand', 'arm'), 3: ('hip',), 4: ('leg', 'foot')}


class DescriptionError(ValueError):
    pass


def _read_lines(path, needed, most, named=False, classes=None):
    """The first `needed` lines of a description file holding exactly `needed` or `most` classes (the model's
    classes, or the whole set): a file with a class missing would shift every later class's text. `named`: `needed`
    is the config's model_args num_class, which the error then names. `classes` (indexes among the first `needed`):
    those lines alone, in that order; the others are counted, never parsed."""
    if not os.path.isfile(path):
        raise DescriptionError(f'description file {path} not found')
    lines = [line.strip() for line in read_text(path, 'a description file').splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            raise DescriptionError(f'{path}, line {number}: empty line (one class per line, in label order)')
    if len(lines) not in (needed, most):
        expected = f'{needed}' + (' (model_args num_class)' if named else '') + \
            (f' or {most} (the whole set)' if needed != most else '')
        raise DescriptionError(f'{path}: {len(lines)} classes, expected {expected}; one class per line, in label '
                               f'order')
    if classes is None:
        return lines[:needed]
    outside = [c for c in classes if c >= needed]
    if outside:
        raise DescriptionError(f'{path}: class {outside[0]} asked (--classes), but the set has {needed} classes '
                               f'(0..{needed - 1})')
    return [lines[c] for c in classes]


def _line_numbers(classes, count):
    """The line numbers of the classes read (all `count`, or `classes`)."""
    return [c + 1 for c in (range(count) if classes is None else classes)]


def read_names(path):
    """The class names of a label-map file (one per line, in label order), with the loader's checks."""
    if not os.path.isfile(path):
        raise DescriptionError(f'label map {path} not found')
    count = len([line for line in read_text(path, 'a label map').splitlines() if line.strip()])
    if count == 0:
        raise DescriptionError(f'{path}: no class names (one per line, in label order)')
    return _check_names(path, _read_lines(path, count, count))


def _check_names(path, names, numbers=None):
    """`names` (a label map's, on lines `numbers`: default 1, 2, ...), refused when a name holds a separator of the
    description files or is given twice (case aside: two classes with one text target)."""
    first = {}
    for number, name in zip(numbers or range(1, len(names) + 1), names):
        separator = next((s for s in ';,' if s in name), None)
        if separator:
            raise DescriptionError(f'{path}, line {number}: class name {name!r} holds {separator!r}, which separates '
                                   f'the fields of the description files; rename the class')
        if name.lower() in first:
            raise DescriptionError(f'{path}, lines {first[name.lower()]} and {number}: class {name!r} twice; every '
                                   f'class needs a name of its own')
        first[name.lower()] = number
    return names


def _check_name(path, number, name, expected):
    if name.strip().lower() != expected.lower():
        raise DescriptionError(f'{path}, line {number}: class name {name.strip()!r} does not match the label map\'s '
                               f'{expected!r} (lines must be in label order)')


def draw_candidates(counts, generator=None):
    """A uniform random index below counts[i] for every i: one draw for the whole batch, on counts' device."""
    device = generator.device if generator is not None else counts.device
    draw = torch.rand(len(counts), generator=generator, device=device).to(counts.device)
    return (draw * counts).long()


class ClassPrompts:
    """Names, synonyms and body-part descriptions of a dataset's classes, and the prompts built from them.

    With `part_text` False, groups 1-4 are the class name alone (an ablation: the part heads get a class-specific
    target without any body-part description)."""

    def __init__(self, names, synonyms, parts, part_text=True):
        self.names = names
        self.synonyms = synonyms          # per class: [name, synonym, ...] (group-0 candidates)
        self.parts = parts                # per class: {part: description}
        self._groups = {g: [', '.join([name] + ([desc[p] for p in part_names] if part_text else []))
                            for name, desc in zip(names, parts)]
                        for g, part_names in GROUP_PARTS.items()}

    @property
    def num_class(self):
        return len(self.names)

    def group(self, g):
        """The group-g prompt of every class (g in 1..4)."""
        if g not in GROUP_PARTS:
            raise ValueError(f'prompt group {g}: expected 1..4 (group 0 is the synonym pool)')
        return self._groups[g]

    def all_texts(self):
        """Every distinct prompt of every group, in a stable order."""
        texts = [t for candidates in self.synonyms for t in candidates]
        for g in GROUP_PARTS:
            texts += self.group(g)
        return list(dict.fromkeys(texts))

    def sample_texts(self, labels, generator=None):
        """Five lists of prompts for a batch of labels: a random group-0 candidate per sample, then groups 1-4.

        With the same generator state it draws the same candidates as `TextFeatureBank.sample`.
        """
        labels = [int(label) for label in labels]
        picks = draw_candidates(torch.tensor([len(self.synonyms[label]) for label in labels]), generator).tolist()
        return [[self.synonyms[label][k] for label, k in zip(labels, picks)]] + \
               [[self.group(g)[label] for label in labels] for g in GROUP_PARTS]


def _set_files(dataset, num_class, text_dir):
    """(file prefix, classes to read, classes in the whole set) of a dataset's description set."""
    spec = specs.get(dataset)
    if text_dir is None and not os.path.exists(os.path.join(TEXT_DIR, f'{spec.text_files}_label_map.txt')):
        raise DescriptionError(f'the {dataset} dataset has no descriptions in text/: give --text-dir DIR holding '
                               f'{", ".join(f"{spec.text_files}_{kind}.txt" for kind in KINDS)} (one class per '
                               f'line; python -m text.describe helps write them)')
    # a set of your own has as many classes as the model, or as its label map when no model says
    most = spec.text_classes or num_class or len(read_names(description_files(dataset, text_dir)[0]))
    limit = spec.num_class or most                          # NTU60 reads the first 60 lines of NTU120's files
    if num_class is not None and num_class > limit:
        raise ValueError(f'the {dataset} descriptions cover {limit} classes, the model has {num_class}')
    return spec.text_files, num_class or limit, most


def description_files(dataset, text_dir=None):
    """The three description files a dataset's prompts are read from."""
    prefix = specs.get(dataset).text_files
    return [os.path.join(text_dir or TEXT_DIR, f'{prefix}_{kind}.txt') for kind in KINDS]


def load_label_map(dataset, text_dir=None, num_class=None, classes=None):
    """The class names of `dataset` (a spec name: 'ntu60', 'ntu120', 'ucla', 'custom'), the first `num_class`, or
    those of the class indexes `classes` (of the whole set), in that order.

    A label map of the whole set in another folder (--text-dir) must name the same classes in the same order as the
    dataset's own: a missing or moved line would give every later class another class's text.
    """
    prefix, count, most = _set_files(dataset, None if classes else num_class, text_dir)
    path = os.path.join(text_dir or TEXT_DIR, f'{prefix}_label_map.txt')
    numbers = _line_numbers(classes, count)
    names = _check_names(path, _read_lines(path, count, most, num_class is not None, classes), numbers)
    reference_path = os.path.join(TEXT_DIR, f'{prefix}_label_map.txt')
    if text_dir and os.path.abspath(text_dir) != TEXT_DIR and os.path.exists(reference_path):
        whole_set = len([line for line in read_text(path, 'a label map').splitlines() if line.strip()]) == most
        if whole_set:
            reference = _read_lines(reference_path, count, most, classes=classes)
            for number, name, expected in zip(numbers, names, reference):
                _check_name(path, number, name, expected)
    return names


def class_names(dataset, num_class=None, text_dir=None, warn=None, classes=None):
    """The names of `dataset`'s first `num_class` classes (without: every class of its label map; with `classes`:
    those class indexes'), 'class <k>' for each class no label map names (your own class set without one, or
    generated data past it): what score tables, figures and predictions show. `warn` is told why when the label map
    cannot be read (e.g. text_dir is gone)."""
    try:
        names = load_label_map(dataset, text_dir, num_class, classes)
    except (ValueError, OSError) as exc:                # DescriptionError is a ValueError
        names = []
        if warn:
            reason = f'text_dir {text_dir} not found' if text_dir and not os.path.isdir(text_dir) else str(exc)
            warn(f'no class names ({reason}): the classes are shown as "class <k>"')
    return names + [f'class {k}' for k in range(len(names), num_class or 0)]


def load_prompts(dataset, text_dir=None, num_class=None, part_text=True, classes=None):
    """Read the description files of `dataset` (a spec name) with clear errors.

    `num_class` smaller than the set keeps its first classes (e.g. a demo on the first 10 NTU actions); the files
    then need only that many lines. `classes` (indexes of the whole set, e.g. a protocol's seen classes) reads those
    classes alone, in that order: the other lines are counted, never parsed.
    """
    prefix, count, most = _set_files(dataset, None if classes else num_class, text_dir)
    names = load_label_map(dataset, text_dir, num_class, classes)
    return _read_set(text_dir or TEXT_DIR, prefix, names, (count, most, num_class is not None), classes, part_text)


def load_class_set(folder, part_text=True):
    """The prompts of a class set: a folder holding one set of description files, <set>_label_map.txt,
    <set>_synonyms.txt and <set>_parts.txt for any <set> (`python -m text.describe parse` writes custom_*), every
    class of its label map (e.g. new classes to score a trained model's samples against)."""
    prefix = class_set_prefix(folder)
    names = read_names(os.path.join(folder, f'{prefix}_label_map.txt'))
    return _read_set(folder, prefix, names, (len(names), len(names), False), None, part_text)


def class_set_prefix(folder):
    """<set> of the one <set>_label_map.txt in `folder`."""
    if not os.path.isdir(folder):
        raise DescriptionError(f'class set {folder}: no such folder (expected one holding <set>_label_map.txt, '
                               f'<set>_synonyms.txt and <set>_parts.txt)')
    maps = sorted(glob.glob(os.path.join(glob.escape(folder), '*_label_map.txt')))
    if len(maps) != 1:
        found = ', '.join(os.path.basename(m) for m in maps) or 'none'
        raise DescriptionError(f'class set {folder}: expected one <set>_label_map.txt (with its <set>_synonyms.txt and '
                               f'<set>_parts.txt), found {found}')
    return os.path.basename(maps[0])[:-len('_label_map.txt')]


def _read_set(folder, prefix, names, sizes, classes, part_text):
    """ClassPrompts of `names` from <folder>/<prefix>_{synonyms,parts}.txt: `sizes` = (classes to read, classes in
    the whole set, whether the first is the config's num_class), `classes` as _read_lines takes them."""
    numbers = _line_numbers(classes, sizes[0])

    def read(kind):
        path = os.path.join(folder, f'{prefix}_{kind}.txt')
        return path, _read_lines(path, *sizes, classes)

    path, lines = read('synonyms')
    synonyms = []
    for number, line, name in zip(numbers, lines, names):
        items = [item.strip() for item in line.split(',')]
        _check_name(path, number, items[0], name)
        if not all(items):
            raise DescriptionError(f'{path}, line {number}: an empty synonym (two commas in a row or a trailing comma)')
        synonyms.append(list(dict.fromkeys([name] + items[1:])))

    path, lines = read('parts')
    parts = []
    for number, line, name in zip(numbers, lines, names):
        fields = [field.strip().rstrip('.').strip() for field in line.split(';')]    # the release ends lines with '.'
        if len(fields) != 1 + len(PARTS):
            raise DescriptionError(f'{path}, line {number}: {len(fields)} fields, expected 7: '
                                   f'name;head ...;hand ...;arm ...;hip ...;leg ...;foot ...')
        _check_name(path, number, fields[0], name)
        for part, field in zip(PARTS, fields[1:]):
            if says_nothing(part, field):
                raise DescriptionError(f'{path}, line {number}: the {part} description is empty')
        parts.append(dict(zip(PARTS, fields[1:])))
    return ClassPrompts(names, synonyms, parts, part_text)


def says_nothing(part, description):
    """Whether a body part's description is empty or just the part's name ('head:')."""
    words = description.replace(':', ' ').split()
    return not words or (len(words) == 1 and words[0].lower() == part)


def derangement(n, seed=0):
    """A random permutation of range(n) that moves every index (n >= 2), the same for the same seed."""
    if n < 2:
        raise ValueError(f'{n} class(es): nothing to move descriptions between')
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if (order != np.arange(n)).all():
            return order.tolist()


def write_shuffled(dataset, folder, num_class=None, seed=0, text_dir=None):
    """Description files (for --text-dir) in which class k keeps its name and synonyms but has the body-part
    descriptions of class order[k], a fixed derangement: the same prompts and loss with the descriptions' content
    unrelated to the action (an ablation of what the text says). Writes <folder>/<set>_{label_map,synonyms,parts}.txt
    and shuffle.txt (which class's descriptions each class got); returns the derangement."""
    prompts = load_prompts(dataset, text_dir, num_class)
    order = derangement(prompts.num_class, seed)
    prefix = specs.get(dataset).text_files
    files = {'label_map': prompts.names,
             'synonyms': [','.join(candidates) for candidates in prompts.synonyms],
             'parts': [';'.join([name] + [prompts.parts[source][p] for p in PARTS])
                       for name, source in zip(prompts.names, order)]}
    for kind, lines in files.items():
        write_text(os.path.join(folder, f'{prefix}_{kind}.txt'), '\n'.join(lines) + '\n')
    record = [f'{k} {prompts.names[k]} <- descriptions of {source} {prompts.names[source]}'
              for k, source in enumerate(order)]
    write_text(os.path.join(folder, 'shuffle.txt'), f'{dataset}, seed {seed}: class <- the class whose body-part '
               f'descriptions it has\n' + '\n'.join(record) + '\n')
    return order
