"""The virtual bench: a deterministic, seeded world of cells, chamber and board.

Cell physics lives in :mod:`rig.sim.ocv` (open-circuit voltage), :mod:`rig.sim.cells`
(the vectorised pack model) and :mod:`rig.sim.thermal` (chamber and thermal lags).
"""
