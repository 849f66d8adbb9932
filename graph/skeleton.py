"""Skeleton graphs: one `Graph` class parameterised by the keypoint layout (`specs.layouts`).

`A` is CTR-GCN's `spatial` labelling, three V x V subsets stacked: identity, inward edges and outward edges, each
column-normalised. `A_outward_binary` is the binary matrix used by LST's k-hop input encoding x <- (I - A^k) x.
"""
import numpy as np

from specs import layouts

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
    """Skeleton graph of a keypoint layout: a name (`ntu`, `ucla`, `coco`) or a layout declared in the config."""

    def __init__(self, layout='ntu', labeling_mode='spatial'):
        if labeling_mode not in LABELING_MODES:
            raise ValueError(f'unknown labeling_mode {labeling_mode!r}; known modes: {", ".join(LABELING_MODES)}')
        self.layout = layouts.get(layout, 'graph_args layout')
        self.num_node = self.layout.num_node
        self.self_link = [(i, i) for i in range(self.num_node)]
        self.inward = list(self.layout.inward)
        self.outward = [(j, i) for i, j in self.inward]
        self.neighbor = self.inward + self.outward
        self.A = spatial_graph(self.num_node, self.inward)
        self.A_outward_binary = edge2mat(self.layout.encoding_edges, self.num_node).astype(np.float32)

    def k_hop_encoding(self, k):
        """The LST input encoding matrix I - A_outward^k (the identity for k = 0)."""
        eye = np.eye(self.num_node)
        if k == 0:
            return eye
        return eye - np.linalg.matrix_power(self.A_outward_binary.astype(np.float64), k)
