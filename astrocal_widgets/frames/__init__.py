"""Catalogue, grouping and matching of frames (headers only)."""
from .catalog import FrameCatalog, FrameGroup, scan
from .exclusions import (EXCLUSION_FILE, ExcludedFrame, add_exclusions, exclusion_list_path, read_exclusions,
                         remove_exclusions, split_excluded, write_exclusions)
from .grouping import MATCH_KEYS, cluster_values, exposures_match

__all__ = ["FrameCatalog", "FrameGroup", "scan", "MATCH_KEYS", "cluster_values", "exposures_match",
           "EXCLUSION_FILE", "ExcludedFrame", "add_exclusions", "exclusion_list_path", "read_exclusions",
           "remove_exclusions", "split_excluded", "write_exclusions"]
