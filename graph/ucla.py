"""NW-UCLA skeleton (20 joints): the `graph.ucla.Graph` path the configs name."""
from graph.skeleton import Graph as _Graph


class Graph(_Graph):
    layout_name = 'ucla'

    def __init__(self, labeling_mode='spatial', scale=1):
        # `scale` is accepted because released configs may pass it; the spatial labelling does not use it.
        super().__init__(self.layout_name, labeling_mode)
