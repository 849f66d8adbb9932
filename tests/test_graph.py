import numpy as np
import pytest

from graph.ntu_rgb_d import Graph as NTUGraph
from graph.skeleton import Graph
from graph.ucla import Graph as UCLAGraph


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
    with pytest.raises(ValueError, match='known layouts: ntu, ucla'):
        Graph('kinetics')
    with pytest.raises(ValueError, match="labeling_mode 'uniform'"):
        NTUGraph(labeling_mode='uniform')
