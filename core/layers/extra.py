"""Layer types added for imported models (Permute, StochasticDepth, LayerScale, Chunk …)."""
