"""Replay benchmark: thinking policies evaluated on recorded answers of both modes, without calling a model."""
