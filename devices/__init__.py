"""Devices of the network: the simulator, the reference client of the device contract."""
