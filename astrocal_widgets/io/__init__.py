"""Reading and writing frames: headers, band reads, lazy cubes, atomic writes."""
from .cube import compute_into_arrays, open_frames, find_frame_files, read_band
from .frame_types import FRAME_TYPES
from .headers import (COORDINATE_COLUMNS, HEADER_FIELDS, HeaderField, HeaderKeyword,
                      bayer_pattern_at_origin, frame_metadata, read_field, register_keywords)
from .overscan import Overscan, Section, SectionError, parse_section, subtract_overscan, trim_image
from .provenance import InputFile, ProductRecord, read_provenance, trace_provenance
from .sources import READ_STATISTICS, FrameSource, open_source, read_header
from .write import atomic_path, write_fits_atomic

__all__ = [
    "open_frames", "find_frame_files", "read_band", "compute_into_arrays", "COORDINATE_COLUMNS", "FRAME_TYPES",
    "HEADER_FIELDS", "HeaderField", "HeaderKeyword", "read_field", "register_keywords",
    "bayer_pattern_at_origin", "frame_metadata", "READ_STATISTICS", "FrameSource", "open_source",
    "read_header", "atomic_path", "write_fits_atomic", "Overscan", "Section", "SectionError", "parse_section",
    "subtract_overscan", "trim_image", "read_provenance", "trace_provenance", "ProductRecord", "InputFile",
]
