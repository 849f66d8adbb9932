"""Skeleton graphs: one `Graph` class parameterised by the joint layout.

`A` is CTR-GCN's `spatial` labelling, three V x V subsets stacked: identity, inward edges and outward edges, each
column-normalised. `A_outward_binary` is the binary matrix used by LST's k-hop input encoding x <- (I - A^k) x.
"""
import numpy as np

# Edges are 1-based joint pairs as published; `inward` points from a joint towards the body centre.
NTU_INWARD = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
              (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8),
              (24, 25), (25, 12)]
# InfoGCN's (parent, child) list, rooted at the spine middle (joint 2).
NTU_INFOGCN_PARENT_CHILD = [(2, 1), (2, 21), (21, 3), (3, 4), (21, 5), (5, 6), (6, 7), (7, 8), (8, 23), (23, 22),
                            (21, 9), (9, 10), (10, 11), (11, 12), (12, 25), (25, 24), (1, 13), (13, 14), (14, 15),
                            (15, 16), (1, 17), (17, 18), (18, 19), (19, 20)]
UCLA_INWARD = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11), (13, 1),
               (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]

# `encoding_edges` (i, j) set A_outward_binary[j, i] = 1 (edge2mat's orientation).
LAYOUTS = {
    # NTU: the release encodes with InfoGCN's list, so A[child, parent] = 1 and (I - A) x turns joints into bone
    # vectors (child minus parent), keeping the root joint as it is.
    'ntu': dict(num_node=25, inward=NTU_INWARD, encoding_edges=NTU_INFOGCN_PARENT_CHILD),
    # NW-UCLA: the release encodes with its own outward list, i.e. A[parent, child] = 1, so (I - A) x gives each
    # joint minus the sum of its children. Kept: the released models were trained so.
    'ucla': dict(num_node=20, inward=UCLA_INWARD, encoding_edges=UCLA_INWARD),
}
LABELING_MODES = ('spatial',)


def edge2mat(edges, num_node):
    """A[j, i] = 1 for every edge (i, j): column i lists where joint i sends its message."""
    A = np.zeros((num_node, num_node))
    for i, j in edges:
        A[j, i] = 1
    return A


def normalize_digraph(A):
    """Divide every column by its sum (columns that sum to zero stay zero)."""
    degree = A.sum(0)
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return A * scale[None, :]


def spatial_graph(num_node, inward):
    outward = [(j, i) for i, j in inward]
    return np.stack([np.eye(num_node),
                     normalize_digraph(edge2mat(inward, num_node)),
                     normalize_digraph(edge2mat(outward, num_node))])


class Graph:
    """Skeleton graph of a joint layout ('ntu': 25 joints, 'ucla': 20 joints)."""

    def __init__(self, layout='ntu', labeling_mode='spatial'):
        if layout not in LAYOUTS:
            raise ValueError(f'unknown skeleton layout {layout!r}; known layouts: {", ".join(LAYOUTS)}')
        if labeling_mode not in LABELING_MODES:
            raise ValueError(f'unknown labeling_mode {labeling_mode!r}; known modes: {", ".join(LABELING_MODES)}')
        spec = LAYOUTS[layout]
        self.layout = layout
        self.num_node = spec['num_node']
        self.self_link = [(i, i) for i in range(self.num_node)]
        self.inward = [(i - 1, j - 1) for i, j in spec['inward']]
        self.outward = [(j, i) for i, j in self.inward]
        self.neighbor = self.inward + self.outward
        self.A = spatial_graph(self.num_node, self.inward)
        encoding_edges = [(i - 1, j - 1) for i, j in spec['encoding_edges']]
        self.A_outward_binary = edge2mat(encoding_edges, self.num_node).astype(np.float32)

    def k_hop_encoding(self, k):
        """The LST input encoding matrix I - A_outward^k (the identity for k = 0)."""
        eye = np.eye(self.num_node)
        if k == 0:
            return eye
        return eye - np.linalg.matrix_power(self.A_outward_binary.astype(np.float64), k)
