"""Class descriptions and LST's five prompt groups.

Files in `text/` (one class per line, in label order; drop in your own in the same format):
  <set>_label_map.txt   the class names
  <set>_synonyms.txt    `name,synonym,synonym,...`
  <set>_parts.txt       `name;head ...;hand ...;arm ...;hip ...;leg ...;foot ...`
where <set> is `ntu120` (NTU60 uses its first 60 classes) or `ucla`.

Prompt groups, as released: 0 = the class name or one of its synonyms (drawn per sample and step), 1 = name + head,
2 = name + hand + arm, 3 = name + hip, 4 = name + leg + foot. Groups 1-4 supervise the part features
[head, hand, hip, foot]; group 0 the global feature. The release joins group 2 without a separator after the name
("drink waterhand ..."); here every group is joined with ", ".
"""
import os

import torch

TEXT_DIR = os.path.dirname(os.path.abspath(__file__))
DATASETS = {'ntu60': ('ntu120', 60), 'ntu120': ('ntu120', 120), 'ucla': ('ucla', 10)}
PARTS = ('head', 'hand', 'arm', 'hip', 'leg', 'foot')
GROUP_PARTS = {1: ('head',), 2: ('hand', 'arm'), 3: ('hip',), 4: ('leg', 'foot')}
NUM_GROUPS = 5


class DescriptionError(ValueError):
    pass


def _read_lines(path, count):
    if not os.path.exists(path):
        raise DescriptionError(f'description file {path} not found')
    with open(path, encoding='utf-8') as f:
        lines = [line.strip() for line in f if line.strip()]
    if len(lines) < count:
        raise DescriptionError(f'{path}: {len(lines)} classes, expected at least {count} (one class per line)')
    return lines[:count]


def _check_name(path, number, name, expected):
    if name.strip().lower() != expected.lower():
        raise DescriptionError(f'{path}, line {number}: class name {name.strip()!r} does not match the label map\'s '
                               f'{expected!r} (lines must be in label order)')


class ClassPrompts:
    """Names, synonyms and body-part descriptions of a dataset's classes, and the prompts built from them."""

    def __init__(self, names, synonyms, parts):
        self.names = names
        self.synonyms = synonyms          # per class: [name, synonym, ...] (group-0 candidates)
        self.parts = parts                # per class: {part: description}

    @property
    def num_class(self):
        return len(self.names)

    def group(self, g):
        """The group-g prompt of every class (g in 1..4)."""
        if g not in GROUP_PARTS:
            raise ValueError(f'prompt group {g}: expected 1..4 (group 0 is the synonym pool)')
        return [', '.join([name] + [parts[p] for p in GROUP_PARTS[g]]) for name, parts in zip(self.names, self.parts)]

    def all_texts(self):
        """Every distinct prompt of every group, in a stable order."""
        texts = [t for candidates in self.synonyms for t in candidates]
        for g in GROUP_PARTS:
            texts += self.group(g)
        return list(dict.fromkeys(texts))

    def sample_texts(self, labels, generator=None):
        """Five lists of prompts for a batch of labels: a random group-0 candidate per sample, then groups 1-4."""
        labels = [int(l) for l in labels]
        picks = [int(torch.randint(len(self.synonyms[l]), (1,), generator=generator)) for l in labels]
        groups = [[self.synonyms[l][k] for l, k in zip(labels, picks)]]
        for g in GROUP_PARTS:
            prompts = self.group(g)
            groups.append([prompts[l] for l in labels])
        return groups


def load_prompts(dataset, text_dir=None, num_class=None):
    """Read the description files of `dataset` ('ntu60', 'ntu120' or 'ucla') with clear errors.

    `num_class` smaller than the set keeps its first classes (e.g. a demo on the first 10 NTU actions).
    """
    if dataset not in DATASETS:
        raise ValueError(f'unknown description set {dataset!r}; known: {", ".join(DATASETS)}')
    prefix, count = DATASETS[dataset]
    if num_class is not None:
        if num_class > count:
            raise ValueError(f'the {dataset} descriptions cover {count} classes, the model has {num_class}')
        count = num_class
    text_dir = text_dir or TEXT_DIR
    names = _read_lines(os.path.join(text_dir, f'{prefix}_label_map.txt'), count)

    path = os.path.join(text_dir, f'{prefix}_synonyms.txt')
    synonyms = []
    for number, (line, name) in enumerate(zip(_read_lines(path, count), names), start=1):
        items = [item.strip() for item in line.split(',')]
        _check_name(path, number, items[0], name)
        if any(not item for item in items):
            raise DescriptionError(f'{path}, line {number}: an empty synonym (two commas in a row or a trailing comma)')
        synonyms.append(list(dict.fromkeys([name] + items[1:])))

    path = os.path.join(text_dir, f'{prefix}_parts.txt')
    parts = []
    for number, (line, name) in enumerate(zip(_read_lines(path, count), names), start=1):
        fields = [field.strip().rstrip('.').strip() for field in line.split(';')]
        if len(fields) != 1 + len(PARTS):
            raise DescriptionError(f'{path}, line {number}: {len(fields)} fields, expected 7: '
                                   f'name;head ...;hand ...;arm ...;hip ...;leg ...;foot ...')
        _check_name(path, number, fields[0], name)
        for part, field in zip(PARTS, fields[1:]):
            words = field.replace(':', ' ').split()
            if not words or (words[0].lower().startswith(part) and len(words) == 1):
                raise DescriptionError(f'{path}, line {number}: the {part} description is empty')
        parts.append(dict(zip(PARTS, fields[1:])))
    return ClassPrompts(names, synonyms, parts)


def dataset_for(num_class, ucla=False):
    """The description set of a benchmark: NW-UCLA, else NTU60 (up to 60 classes) or NTU120."""
    if ucla:
        return 'ucla'
    return 'ntu60' if num_class <= 60 else 'ntu120'
