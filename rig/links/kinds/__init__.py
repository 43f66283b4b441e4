"""The built-in link kinds, one module each (:mod:`.can`, :mod:`.modbus`); see :mod:`rig.links.registry`."""
