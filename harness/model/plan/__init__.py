"""Planning a run before anything runs: each cell's predicted peak memory (by term), training steps and
wall time, and whether it fits the device, from model configurations alone (meta device: no weights).

- shape.py: a model's dimensions and parameter counts from its config;
- methods.py: what each strategy trains (trainable parameters counted from the shape);
- footprint.py: the memory formulas; timing.py: the time formulas and their calibration;
- workload.py: a cell's tokens, steps and batch shapes from the suite and options;
- cells.py: one row per cell of a plan, and the fit verdict.
"""

from __future__ import annotations

from harness.model.plan.cells import Capacity, CellPlan, capacity, plan_cell, plan_cells, verdict
from harness.model.plan.footprint import GB, Footprint, Method, Shapes, activation_bytes, footprint
from harness.model.plan.methods import method_for
from harness.model.plan.shape import ModelShape, meta_model, shape_of
from harness.model.plan.timing import Timing, Workload, predict_time

__all__ = [
    "GB", "Capacity", "CellPlan", "Footprint", "Method", "ModelShape", "Shapes", "Timing", "Workload",
    "activation_bytes", "capacity", "footprint", "meta_model", "method_for", "plan_cell", "plan_cells",
    "predict_time", "shape_of", "verdict",
]
