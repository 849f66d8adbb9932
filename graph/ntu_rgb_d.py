"""NTU RGB+D skeleton (25 joints): the `graph.ntu_rgb_d.Graph` path the configs name."""
from graph.skeleton import Graph as _Graph


class Graph(_Graph):
    layout_name = 'ntu'

    def __init__(self, labeling_mode='spatial'):
        super().__init__(self.layout_name, labeling_mode)
