"""Board models of other vendors' BMS boards for the virtual bench, one module per board.

Each plays a board whose firmware made other choices than the reference board (when it
balances, how it starts, how it groups its channels, how it reports, how it recovers from
HVC/LVC, its derating curve, its temperature sensors) and states them in its own profile
(``testplans/profiles/<vendor>-*.yaml``). They run the reference firmware's cycle
(:mod:`rig.sim.reference`, configured from the profile) with their own telemetry layout and
identity on top; the plans know nothing of them but the profile. Registered by name in
:data:`rig.sim.boards.BUILTIN`.
"""
