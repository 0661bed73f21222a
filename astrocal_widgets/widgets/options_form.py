"""The fields of :class:`~astrocal_widgets.calibrate.CalibrationOptions` as widgets, made from the dataclass."""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import ipywidgets as w

from ..calibrate import CalibrationOptions
from ..calibrate.options import OPTION_CHOICES

_STYLE = {"description_width": "170px"}


def _field_help() -> dict[str, str]:
    """Each field's description, from the Attributes section of the dataclass's docstring (its tooltips)."""
    text = CalibrationOptions.__doc__ or ""
    helps: dict[str, str] = {}
    names: list[str] = []
    for line in text.splitlines():
        heading = re.match(r"^    (\w+(?:, \w+)*) : ", line)
        if heading:
            names = heading.group(1).split(", ")
            for name in names:
                helps[name] = ""
        elif names and line.startswith("        "):
            for name in names:
                helps[name] = (helps[name] + " " + line.strip()).strip()
        elif line.strip():
            names = []
    return helps


class OptionsForm:
    """One widget per field of :class:`CalibrationOptions`, its default or given value, its doc as tooltip.

    A yes/no field is a check box, a number a number box, a field with fixed choices
    (:data:`~astrocal_widgets.calibrate.options.OPTION_CHOICES`) a menu, ``rejection_thresholds`` a
    "low, high" text (empty: the algorithm's defaults) and ``library`` one folder per line.

    Attributes
    ----------
    controls : dict
        Field name -> widget.
    widget : ipywidgets.Widget
    """

    def __init__(self, options: CalibrationOptions | None = None) -> None:
        helps = _field_help()
        self.controls: dict[str, w.ValueWidget] = {}
        for f in dataclasses.fields(CalibrationOptions):
            default = f.default
            label = f.name.replace("_", " ")
            common = dict(description=label, style=_STYLE, tooltip=helps.get(f.name, ""),
                          layout=w.Layout(width="420px"))
            if isinstance(default, bool):
                control = w.Checkbox(value=default, indent=True, **common)
            elif f.name in OPTION_CHOICES:
                control = w.Dropdown(options=list(OPTION_CHOICES[f.name]), value=default, **common)
            elif isinstance(default, (int, float)):
                control = w.FloatText(value=float(default), **common)
            elif f.name == "library":
                control = w.Textarea(value="", placeholder="one folder of masters per line", **common)
            else:  # (low, high) or None
                control = w.Text(value="", placeholder="low, high (empty: the defaults)", **common)
            control.add_class(f"astrocal-option-{f.name.replace('_', '-')}")
            self.controls[f.name] = control
        self.widget = w.VBox(list(self.controls.values()))
        if options is not None:
            self.set(options)

    def set(self, options: CalibrationOptions) -> None:
        """Show ``options`` in the widgets."""
        for name, control in self.controls.items():
            value = getattr(options, name)
            if name == "library":
                control.value = "\n".join(value)
            elif name == "rejection_thresholds":
                control.value = "" if value is None else f"{value[0]:g}, {value[1]:g}"
            elif name == "overscan":
                control.value = value if isinstance(value, str) and value in control.options else "auto"
            else:
                control.value = value

    def options(self) -> CalibrationOptions:
        """The options the widgets show.

        Raises
        ------
        ValueError
            A value the options refuse (the message names the field).
        """
        values: dict[str, Any] = {}
        for name, control in self.controls.items():
            value = control.value
            if name == "library":
                value = tuple(line.strip() for line in value.splitlines() if line.strip())
            elif name == "rejection_thresholds":
                parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
                if not parts:
                    value = None
                elif len(parts) == 2:
                    try:
                        value = (float(parts[0]), float(parts[1]))
                    except ValueError:
                        raise ValueError(f"rejection thresholds must be two numbers 'low, high', got {value!r}")
                else:
                    raise ValueError(f"rejection thresholds must be two numbers 'low, high', got {value!r}")
            values[name] = value
        return CalibrationOptions(**values)
