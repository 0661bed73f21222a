"""Catalogue, grouping and matching of frames (headers only)."""
from .catalog import FrameCatalog, FrameGroup, scan
from .grouping import MATCH_KEYS, cluster_values, exposures_match

__all__ = ["FrameCatalog", "FrameGroup", "scan", "MATCH_KEYS", "cluster_values", "exposures_match"]
