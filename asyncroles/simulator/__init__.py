"""A faithful Auth0 Management API simulator, served on 127.0.0.1.

Auth0 cannot be reached from our machines, and users want to try asyncroles
before pointing it at a production tenant, so the project ships a simulated
tenant that behaves like the real one (``/work/shared/auth0-api.md``): rate
limits and their headers, 429s, both pagination modes, export jobs, faults.

    from asyncroles.simulator import Simulator, SimulatorSettings

    async with Simulator(SimulatorSettings(users=1000, bucket=50, refill_per_s=16.0)) as sim:
        sim.domain, sim.client_id, sim.client_secret   # what a client needs
        sim.tenant.truth()                             # what it should find
        sim.stats                                      # what it did

From the shell: ``asyncroles simulate --help``.
"""

from asyncroles.simulator.bucket import BackgroundSpender, TokenBucket
from asyncroles.simulator.server import Simulator
from asyncroles.simulator.settings import Clock, SimulatorSettings
from asyncroles.simulator.stats import Stats
from asyncroles.simulator.tenant import Role, Tenant

__all__ = [
    "BackgroundSpender",
    "Clock",
    "Role",
    "Simulator",
    "SimulatorSettings",
    "Stats",
    "Tenant",
    "TokenBucket",
]
