"""A plan that charges a cell-model pack whose board never cuts off (run with an HVC defect).

The emulator's protection must trip at the hard limit: the run is a rig fault (exit 3),
the rig is put in its safe state, and no terminal ever goes beyond the limit.
"""


def test_charge_without_cutoff(emulator, pack_source, clock, profile):
    emulator.set_cell_model(profile.chemistry, profile.capacity_ah, 0.95)
    pack_source.set_current(20.0)
    highest = 0.0
    for _ in range(3000):
        clock.sleep(10.0)
        highest = max(highest, float(emulator.read_voltages().max()))
        print(f"highest terminal voltage {highest:.4f} V", flush=True)
