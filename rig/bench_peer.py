"""``bmsrig bench peer-ecm``: the bench's throughput side by side with an independent
equivalent-circuit simulation of the same pack, when one is installed.

The peer is PyBaMM's Thevenin model (``pybamm.equivalent_circuit.Thevenin``, its default
ECM_Example parameters with the pack's cell capacity). Both simulate the pack of
the board profile (``bmsrig bench``: reference-16s-lfp) discharging at ``current_a`` for ``duration_s`` from 90 % SOC,
with an output every ``output_s`` (the bench: ``advance(output_s)`` then a terminal-voltage
read; PyBaMM: the experiment's ``period``). PyBaMM solves one cell; the series pack is
``n`` such cells carrying the same current, so its pack figure is ``n`` × the one-cell
solve (stated in the result). ``ratio`` = peer wall / bench wall for the same simulated
time (> 1: the bench is faster).

PyBaMM is an optional peer: when it cannot be imported the scenario reports
``"status": "absent"`` and measures nothing (no figure is invented). Units: s, A.
"""

from __future__ import annotations

import importlib
import importlib.util
import time

PEER = "pybamm"


def _scenario(simulated_s: float, wall_s: float, result: dict) -> dict:
    return {"scenario": "peer-ecm", "simulated_s": simulated_s, "wall_s": round(wall_s, 4),
            "ratio": round(simulated_s / wall_s, 1) if wall_s > 0 else None, "result": result}


def peer_available() -> bool:
    """Whether the peer (PyBaMM) can be imported here."""
    return importlib.util.find_spec(PEER) is not None


def _bench_wall(profile, duration_s: float, output_s: float, current_a: float) -> float:
    from .sim.world import World

    w = World(profile, seed=0)
    w.set_cell_model(profile.chemistry, profile.capacity_ah, 0.9)
    w.set_charger(-current_a, None)
    steps = max(1, int(round(duration_s / output_s)))
    t0 = time.perf_counter()
    for _ in range(steps):
        w.advance(output_s)
        w.terminal_voltages()
    wall = time.perf_counter() - t0
    w.close()
    return wall


def _peer_cell_wall(capacity_ah: float, duration_s: float, output_s: float, current_a: float) -> float:
    # the peer is not a dependency of bmsrig (nothing but this comparison uses it): imported
    # by name, only when peer_available() found it installed
    pybamm = importlib.import_module(PEER)

    model = pybamm.equivalent_circuit.Thevenin()
    params = model.default_parameter_values
    params.update({"Cell capacity [A.h]": capacity_ah, "Initial SoC": 0.9}, check_already_exists=False)
    experiment = pybamm.Experiment([f"Discharge at {current_a} A for {duration_s} seconds"],
                                   period=f"{output_s} seconds")
    sim = pybamm.Simulation(model, parameter_values=params, experiment=experiment)
    t0 = time.perf_counter()
    sim.solve()
    return time.perf_counter() - t0


def peer_ecm(profile_name: str, duration_s: float = 3600.0, current_a: float = 20.0, outputs_s=(1.0, 60.0)) -> dict:
    """The side-by-side figure per output interval for the board profile ``profile_name``,
    or ``status: absent`` without a peer."""
    if not peer_available():
        return _scenario(0.0, 0.0, {"peer": PEER, "status": "absent",
                                    "reason": f"{PEER} is not installed here: no side-by-side figure"})
    from .profile import load_profile

    profile = load_profile(profile_name)
    rows = []
    total = 0.0
    for out in outputs_s:
        ours = _bench_wall(profile, duration_s, out, current_a)
        cell = _peer_cell_wall(profile.capacity_ah, duration_s, out, current_a)
        peer = cell * profile.cells
        total += ours
        rows.append({"output_s": out, "bench_wall_s": round(ours, 4), "peer_cell_wall_s": round(cell, 4),
                     "peer_pack_wall_s": round(peer, 4), "ratio": round(peer / ours, 2) if ours > 0 else None})
    return _scenario(duration_s * len(rows), total, {
        "peer": PEER, "status": "measured", "model": "pybamm.equivalent_circuit.Thevenin (ECM_Example)",
        "pack": f"{profile.cells} cells x one-cell solve", "duration_s": duration_s, "current_a": current_a,
        "by_output": rows})
