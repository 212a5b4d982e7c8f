"""``hardware_efficient``: RY then RZ on every qubit, then an open chain of entanglers."""

from __future__ import annotations

from hqexp.quantum.templates.base import HALF_PI, Template


class HardwareEfficient(Template):
    name = "hardware_efficient"
    rotations = ("RY", "RZ")
    # RZ(β)RY(α) = [[e^{-iβ/2}c, -e^{-iβ/2}s], [e^{iβ/2}s, e^{iβ/2}c]]
    trig_form = (
        ((0.5,) * 4, (0, 0, 0, 0)),
        (0, HALF_PI, -HALF_PI, 0),
        ((0, 0, 0, 0), (-0.5, -0.5, 0.5, 0.5)),
        (0, 0, 0, 0),
    )
