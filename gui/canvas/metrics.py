"""Sizes and spacings of the canvas, in scene units (pixels at 100 % zoom).

Every node card has the same size, so layers line up and the layout can work without Qt.
Positions stored in the model are the top-left corners of node cards.
"""

from __future__ import annotations

NODE_W = 196.0
NODE_H = 52.0
CARD_W = 280.0  # a collapsed block
CARD_H = 96.0  # title band, a line of detail, badges, output shape
LAYER_GAP = 48.0  # vertical room between layers: edge labels and group frames live there
COLUMN_GAP = 44.0
DUMMY_W = 24.0  # the lane a long edge reserves while passing a layer
FRAME_PAD = 12.0  # group frame around its members
FRAME_TOP = 18.0  # extra room for the frame's title
PORT_R = 4.5
PORT_HIT = 11.0  # how close a press must be to a port to grab it
RADIUS = 7.0  # card corner radius
SNAP = 4.0  # moved nodes snap to this grid so rows stay aligned
