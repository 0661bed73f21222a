"""Calibration: masters, matching rules, a master library, applying masters, cosmetic correction.

:func:`calibrate_session` runs a whole night; the pieces are public for notebook users.
"""
from .apply import DarkScaleResult, calibrate_frame, normalized_flat, optimize_dark_scale
from .cosmetic import DefectMap, cold_pixel_map, correct_defects, dark_defect_maps, defect_map, hot_pixel_map
from .levels import LevelCheck, check_calibrated_level, master_level_problem
from .library import MasterChoice, MasterLibrary, find_master
from .build_masters import MASTER_OPTIONS, build_master, subtract_masters
from .overscan import Overscan, parse_section, subtract_overscan, trim_image
from .prerequisites import NeededMaster, Prerequisites, flat_prerequisites, light_prerequisites, master_file
from ..errors import CalibrationMismatchError, SectionError  # re-exported: they were defined here
from .matching import CalibrationWarning, Mismatch, check_compatibility, enforce
from .flats import FlatCalibration, calibrate_flats
from .lights import CalibratedLight, LightRecord, MastersUsed, calibrate_light
from .options import CalibrationOptions, load_options, save_options
from .session import CalibrationResult, MasterRecord, calibrate_session
from .stale import RebuildResult, StaleProduct, rebuild_stale, stale_products

__all__ = [
    "calibrate_session", "CalibrationOptions", "save_options", "load_options", "stale_products", "StaleProduct",
    "rebuild_stale", "RebuildResult", "CalibrationResult", "LightRecord", "MasterRecord", "calibrate_light",
    "CalibratedLight", "MastersUsed",
    "calibrate_flats", "FlatCalibration", "build_master", "subtract_masters",
    "MASTER_OPTIONS", "calibrate_frame", "normalized_flat", "optimize_dark_scale", "DarkScaleResult",
    "hot_pixel_map", "cold_pixel_map", "dark_defect_maps", "defect_map", "correct_defects", "DefectMap", "MasterLibrary",
    "MasterChoice", "find_master", "check_compatibility", "enforce", "Mismatch", "CalibrationMismatchError",
    "CalibrationWarning", "Prerequisites", "NeededMaster", "flat_prerequisites", "light_prerequisites",
    "master_file", "LevelCheck", "check_calibrated_level", "master_level_problem",
    "Overscan", "SectionError", "parse_section", "subtract_overscan", "trim_image",
]
