"""Sizes and spacings of the canvas, in scene units (pixels at 100 % zoom).

The card sizes and the gaps between them are the layout's (:mod:`core.layout`, which places
cards without Qt); what only drawing and gestures need is here. Positions stored in the model
are the top-left corners of node cards.
"""

from __future__ import annotations

from core.layout import CARD_H, CARD_W, COLUMN_GAP, DUMMY_W, FRAME_PAD, FRAME_TOP, LAYER_GAP, NODE_H, NODE_W

PORT_R = 4.5
PORT_HIT = 11.0  # how close a press must be to a port to grab it
RADIUS = 7.0  # card corner radius
SNAP = 4.0  # moved nodes snap to this grid so rows stay aligned

__all__ = ["CARD_H", "CARD_W", "COLUMN_GAP", "DUMMY_W", "FRAME_PAD", "FRAME_TOP", "LAYER_GAP", "NODE_H", "NODE_W",
           "PORT_HIT", "PORT_R", "RADIUS", "SNAP"]
