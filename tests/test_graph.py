import numpy as np
import pytest

from graph.ntu_rgb_d import Graph as NTUGraph
from graph.skeleton import Graph
from graph.ucla import Graph as UCLAGraph
from specs import layouts


@pytest.mark.parametrize('graph, joints', [(NTUGraph(), 25), (UCLAGraph(), 20)])
def test_spatial_labelling(graph, joints):
    A = graph.A
    assert A.shape == (3, joints, joints)
    np.testing.assert_array_equal(A[0], np.eye(joints))
    for subset in A[1:]:
        sums = subset.sum(0)
        # every column is normalised; only the root (no parent in `inward` for its column) may be empty
        assert np.allclose(sums[sums > 0], 1.0)
    # outward is the transpose pattern of inward
    np.testing.assert_array_equal(A[1] > 0, (A[2] > 0).T)


def test_ntu_known_entries():
    A = NTUGraph().A
    # edge (1, 2) 1-based: joint 0 -> 1 inward, A[j, i] = 1 normalised by column 0 (joint 0 has one inward edge)
    assert A[1][1, 0] == 1.0
    # the spine shoulder (index 20) receives four inward edges: from joints 2, 3(neck), 5(l-shoulder), 9(r-shoulder)
    assert sorted(np.nonzero(A[1][20])[0].tolist()) == [1, 2, 4, 8]
    # column 20 of the outward subset (the spine shoulder sends to neck, both shoulders and spine middle: 4 edges)
    np.testing.assert_allclose(A[2][:, 20][A[2][:, 20] > 0], 0.25)


def test_ntu_encoding_is_bone_vectors():
    graph = NTUGraph()
    parents = graph.A_outward_binary.argmax(1)
    has_parent = graph.A_outward_binary.sum(1)
    assert has_parent.sum() == 24 and has_parent[1] == 0          # the spine middle is the root
    x = np.random.default_rng(0).normal(size=(25, 3))
    bones = graph.k_hop_encoding(1) @ x
    for child in range(25):
        expected = x[child] - x[parents[child]] if has_parent[child] else x[child]
        np.testing.assert_allclose(bones[child], expected)
    # hand-checked InfoGCN edges: the neck (index 2) hangs on the spine shoulder (20), the head (3) on the neck
    assert parents[2] == 20 and parents[3] == 2 and parents[0] == 1


def test_ntu_two_hop_reaches_grandparents():
    graph = NTUGraph()
    x = np.random.default_rng(1).normal(size=(25, 3))
    encoded = graph.k_hop_encoding(2) @ x
    # hand (index 7) -> wrist (6) -> elbow (5); the spine shoulder (20) -> spine middle (1) -> none
    np.testing.assert_allclose(encoded[7], x[7] - x[5])
    np.testing.assert_allclose(encoded[20], x[20])
    np.testing.assert_allclose(encoded[3], x[3] - x[20])      # head -> neck -> spine shoulder


def test_ucla_known_entries():
    A = UCLAGraph().A
    assert int((A[1] > 0).sum()) == 19 and int((A[2] > 0).sum()) == 19
    # the spine (index 2) receives four inward edges (joints 1, 3, 4, 8): its outward column splits four ways
    assert sorted(np.nonzero(A[1][2])[0].tolist()) == [1, 3, 4, 8]
    np.testing.assert_allclose(A[2][[1, 3, 4, 8], 2], 0.25)
    # the hip centre (index 0) sends inward to the spine-base joint 1; the spine is the inward root: empty column
    assert A[1][1, 0] == 1.0 and A[1][:, 0].sum() == 1.0 and A[1][:, 2].sum() == 0.0


def test_ucla_encoding_subtracts_children():
    graph = UCLAGraph()
    # the release encodes NW-UCLA with A[parent, child] = 1: the spine (index 2) has children 1, 3, 4, 8
    assert sorted(np.nonzero(graph.A_outward_binary[2])[0].tolist()) == [1, 3, 4, 8]
    np.testing.assert_array_equal(graph.k_hop_encoding(0), np.eye(20))


def test_k_hop_is_matrix_power():
    graph = NTUGraph()
    A = graph.A_outward_binary.astype(np.float64)
    np.testing.assert_array_equal(graph.k_hop_encoding(8), np.eye(25) - np.linalg.matrix_power(A, 8))


def test_bad_layout_and_mode():
    with pytest.raises(ValueError, match="layout 'kinetics': unknown layout; known: ntu, ucla, coco"):
        Graph('kinetics')
    with pytest.raises(ValueError, match="labeling_mode 'uniform'"):
        NTUGraph(labeling_mode='uniform')


# The bone pairs the released feeders used, 1-based (joint, partner): now derived from the layouts' edges.
RELEASED_BONE_PAIRS = {
    'ntu': ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
            (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (21, 21), (23, 8),
            (24, 25), (25, 12)),
    'ucla': ((1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
             (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)),
}


@pytest.mark.parametrize('name', ['ntu', 'ucla'])
def test_bone_pairs_derived_from_edges_equal_the_released(name):
    released = sorted((v - 1, u - 1) for v, u in RELEASED_BONE_PAIRS[name])
    assert list(layouts.get(name).bone_pairs) == released


def test_coco_layout_is_pyskls():
    graph = Graph('coco')
    assert graph.num_node == 17 and graph.layout.center == 0
    assert int((graph.A[1] > 0).sum()) == 16
    # the nose sends to both eyes and both shoulders
    assert sorted(np.nonzero(graph.A[2][:, 0])[0].tolist()) == [1, 2, 5, 6]
    # LST's k = 1 encoding on COCO gives bone vectors (joint minus its neighbour towards the nose), like NTU's
    x = np.random.default_rng(2).normal(size=(17, 2))
    bones = graph.k_hop_encoding(1) @ x
    np.testing.assert_allclose(bones[9], x[9] - x[7])             # left wrist - left elbow
    np.testing.assert_allclose(bones[0], x[0])
    groups = graph.layout.groups['joint']
    assert sorted(sum(groups.values(), [])) != [] and set(sum(groups.values(), [])) == set(range(17))


def test_declared_layout():
    spec = dict(edges=[[1, 0], [2, 1], [3, 1], [4, 0]], center=0,
                groups=dict(head=[0], hand=[2, 3], hip=[0, 1], foot=[4]))
    graph = Graph(spec)
    assert graph.num_node == 5 and graph.layout.bone_pairs == ((0, 0), (1, 0), (2, 1), (3, 1), (4, 0))
    assert graph.layout.groups['bone']['head'] == [0]               # only the centre: kept rather than emptied
    assert graph.layout.groups['bone']['hip'] == [1]


@pytest.mark.parametrize('change, message', [
    (dict(edges=[[1, 0], [2, 1], [2, 0]]), 'joint 2 has several'),
    (dict(edges=[[1, 0], [0, 1], [2, 1]]), 'joint 0 is the centre'),
    (dict(edges=[[1, 2], [2, 1]], num_node=3), 'joint 1 does not reach the centre'),
    (dict(edges=[[1, 0]], num_node=3), r'joint\(s\) \[2\] have no edge'),
    (dict(edges=[[1, 7]], num_node=3), 'joint 7 is not an index in 0..2'),
    (dict(groups=dict(head=[0], hand=[1])), 'expected the four parts'),
    (dict(groups=dict(head=[], hand=[1], hip=[0], foot=[2])), r'groups.head: expected a non-empty list'),
    (dict(colour='red'), 'unknown key'),
])
def test_declared_layout_mistakes(change, message):
    spec = dict(edges=[[1, 0], [2, 1]], center=0, groups=dict(head=[0], hand=[1], hip=[0], foot=[2]))
    spec.update(change)
    with pytest.raises(ValueError, match=message):
        layouts.get(spec, 'layout')
