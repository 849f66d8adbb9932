"""Keypoint layouts: the joints of a skeleton, its edges, its centre, and LST's four body-part groups.

A layout is everything the graph, the feeders' bone modality and LST's part heads need to know about a keypoint set.
Named layouts: `ntu` (NTU RGB+D, 25 joints), `ucla` (NW-UCLA, 20), `coco` (COCO-17, the 2-D keypoints of HRNet,
RTMPose, BlazePose mapped to COCO). A config may declare its own as a mapping, with no code:

    layout:
      num_node: 14                        # optional: one more than the largest joint index
      edges: [[1, 0], [2, 1], ...]        # 0-based (joint, its neighbour towards the centre), one per joint but the centre
      center: 0                           # the root joint: its bone is zero
      groups: {head: [...], hand: [...], hip: [...], foot: [...]}   # joints pooled by LST's part heads
      bone_groups: {...}                  # optional: groups for bone streams (default: `groups` without the centre)

Bone pairs are derived from the edges: a joint's bone is the joint minus its neighbour towards the centre.
"""
from dataclasses import dataclass

PARTS = ('head', 'hand', 'hip', 'foot')


@dataclass(frozen=True)
class Layout:
    name: str
    num_node: int
    inward: tuple                 # 0-based (joint, neighbour towards the centre)
    center: int
    encoding_edges: tuple         # (i, j): LST's k-hop encoding matrix has A[j, i] = 1
    groups: dict                  # 'joint' and 'bone': {part: [joints]}

    @property
    def bone_pairs(self):
        """0-based (joint, partner) pairs: bone = joint - partner; the centre is its own partner (a zero bone)."""
        return tuple(sorted(self.inward + ((self.center, self.center),)))

    @property
    def parents(self):
        """Each joint's neighbour towards the centre (the centre's is itself)."""
        return dict(self.bone_pairs)


def _zero_based(pairs):
    return tuple((i - 1, j - 1) for i, j in pairs)


# NTU RGB+D (1-based as published): `inward` points from a joint towards the spine shoulder (joint 21).
_NTU_INWARD = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
               (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
               (23, 8), (24, 25), (25, 12))
# The release encodes NTU with InfoGCN's (parent, child) list rooted at the spine middle (joint 2): A[child, parent] = 1,
# so (I - A) x turns joints into bone vectors (child minus parent), the root kept as it is.
_NTU_INFOGCN_PARENT_CHILD = ((2, 1), (2, 21), (21, 3), (3, 4), (21, 5), (5, 6), (6, 7), (7, 8), (8, 23), (23, 22),
                             (21, 9), (9, 10), (10, 11), (11, 12), (12, 25), (25, 24), (1, 13), (13, 14), (14, 15),
                             (15, 16), (1, 17), (17, 18), (18, 19), (19, 20))
_UCLA_INWARD = ((1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11), (13, 1),
                (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19))
# pyskl's COCO-17 graph (0-based, (joint, towards the nose)).
_COCO_INWARD = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
                (6, 0), (1, 0), (3, 1), (2, 0), (4, 2))

NAMED = {
    'ntu': Layout(
        'ntu', 25, _zero_based(_NTU_INWARD), 20, _zero_based(_NTU_INFOGCN_PARENT_CHILD),
        # The released part groups, 0-based (bone streams pool bone vectors, hence their own groups).
        {'joint': dict(head=[2, 3, 20], hand=[4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24], hip=[0, 1, 2, 12, 16],
                       foot=[12, 13, 14, 15, 16, 17, 18, 19]),
         'bone': dict(head=[2, 3], hand=[4, 5, 6, 7, 8, 9, 10, 11, 20, 22, 23, 24], hip=[0, 1, 12, 16],
                      foot=[12, 13, 14, 15, 16, 17, 18, 19])}),
    # NW-UCLA: the release encodes with its own inward list, i.e. A[parent, child] = 1, so (I - A) x gives each joint
    # minus the sum of its children. Kept: the released models were trained so.
    'ucla': Layout(
        'ucla', 20, _zero_based(_UCLA_INWARD), 2, _zero_based(_UCLA_INWARD),
        {'joint': dict(head=[2, 3], hand=[10, 11, 6, 7, 8, 9, 4, 5], hip=[0, 1, 12, 16],
                       foot=[16, 17, 18, 19, 12, 13, 14, 15]),
         'bone': dict(head=[2], hand=[7, 8, 9, 10, 3, 4, 5, 6], hip=[0, 1, 11, 15],
                      foot=[11, 12, 13, 14, 15, 16, 17, 18])}),
    # COCO-17 has no spine: the face keypoints are the head; shoulders, elbows and wrists the hands (NTU's hand group
    # also starts at the shoulders); hips, knees and ankles the feet (as NTU's foot group starts at the hips); and the
    # torso, which NTU's hip group spans with the spine, is the quadrilateral of shoulders and hips.
    'coco': Layout(
        'coco', 17, _COCO_INWARD, 0, tuple((j, i) for i, j in _COCO_INWARD),
        {'joint': dict(head=[0, 1, 2, 3, 4], hand=[5, 6, 7, 8, 9, 10], hip=[5, 6, 11, 12],
                       foot=[11, 12, 13, 14, 15, 16]),
         'bone': dict(head=[1, 2, 3, 4], hand=[5, 6, 7, 8, 9, 10], hip=[5, 6, 11, 12],
                      foot=[11, 12, 13, 14, 15, 16])}),
}
DECLARED_KEYS = ('name', 'num_node', 'edges', 'center', 'groups', 'bone_groups')


def get(layout, where='layout'):
    """A Layout from a name (`ntu`, `ucla`, `coco`), a declared mapping (see the module's docstring), or a Layout."""
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, str):
        if layout not in NAMED:
            raise ValueError(f'{where} {layout!r}: unknown layout; known: {", ".join(NAMED)}, or declare one '
                             f'(edges, center, groups)')
        return NAMED[layout]
    if isinstance(layout, dict):
        return declared(layout, where)
    raise ValueError(f'{where}: expected a layout name ({", ".join(NAMED)}) or a mapping with edges, center and '
                     f'groups, got {type(layout).__name__}')


def declared(spec, where='layout'):
    """A layout declared in a config, checked so that every mistake is one line naming the key."""
    unknown = sorted(set(spec) - set(DECLARED_KEYS))
    if unknown:
        raise ValueError(f'{where}: unknown key(s) {", ".join(unknown)}; expected {", ".join(DECLARED_KEYS)}')
    for key in ('edges', 'center', 'groups'):
        if key not in spec:
            raise ValueError(f'{where}: no `{key}` (a declared layout needs edges, center and groups)')
    edges = _pairs(spec['edges'], f'{where}.edges')
    num_node = spec.get('num_node', 1 + max([spec['center']] + [max(e) for e in edges]))
    center = _index(spec['center'], num_node, f'{where}.center')
    for joint, neighbour in edges:
        for value in (joint, neighbour):
            _index(value, num_node, f'{where}.edges')
    children = [joint for joint, _ in edges]
    twice = sorted({j for j in children if children.count(j) > 1})
    if twice or center in children:
        raise ValueError(f'{where}.edges: each joint but the centre needs exactly one edge towards the centre, given '
                         f'as [joint, neighbour]; joint {(twice or [center])[0]} '
                         f'{"has several" if twice else "is the centre and has one"}')
    missing = sorted(set(range(num_node)) - set(children) - {center})
    if missing:
        raise ValueError(f'{where}.edges: joint(s) {missing} have no edge towards the centre {center}')
    _check_tree(edges, center, where)
    groups = check_groups(spec['groups'], num_node, f'{where}.groups')
    bone_groups = check_groups(spec['bone_groups'], num_node, f'{where}.bone_groups') if 'bone_groups' in spec else \
        {part: [j for j in joints if j != center] or list(joints) for part, joints in groups.items()}
    return Layout(str(spec.get('name', 'declared')), num_node, edges, center, tuple((j, i) for i, j in edges),
                  {'joint': groups, 'bone': bone_groups})


def _pairs(value, where):
    try:
        pairs = tuple((a, b) for a, b in value)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: expected a list of [joint, neighbour] pairs of joint indexes') from None
    if not pairs:
        raise ValueError(f'{where}: no edges')
    for pair in pairs:
        if any(isinstance(joint, bool) or not isinstance(joint, int) for joint in pair):
            raise ValueError(f'{where}: {list(pair)!r} is not a pair of joint indexes (whole numbers)')
    return pairs


def _index(value, num_node, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_node:
        raise ValueError(f'{where}: joint {value!r} is not an index in 0..{num_node - 1}')
    return value


def _check_tree(edges, center, where):
    """Following the edges from any joint must reach the centre (no cycle)."""
    towards = dict(edges)
    for start in towards:
        seen, joint = set(), start
        while joint != center:
            if joint in seen or joint not in towards:
                raise ValueError(f'{where}.edges: joint {start} does not reach the centre {center} (a cycle)')
            seen.add(joint)
            joint = towards[joint]


def check_groups(value, num_node, where):
    """{head, hand, hip, foot: [joints]} with every joint in 0..num_node - 1."""
    if not isinstance(value, dict) or sorted(value) != sorted(PARTS):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f'{where}: expected the four parts {", ".join(PARTS)} with their joints, got {got}')
    groups = {}
    for part in PARTS:
        joints = value[part]
        if not isinstance(joints, (list, tuple)) or not joints:
            raise ValueError(f'{where}.{part}: expected a non-empty list of joint indexes')
        groups[part] = [_index(j, num_node, f'{where}.{part}') for j in joints]
    return groups
