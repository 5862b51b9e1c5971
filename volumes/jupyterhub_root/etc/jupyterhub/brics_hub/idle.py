"""
Freeing idle allocations: a user's server that sees no activity for `idleTimeout` seconds shuts
itself down, so its Slurm job ends and the hub's next poll shows the server as stopped.

This is jupyter-server's own inactivity shutdown, told through the server's command line
(Spawner.args, which batchspawner appends to the command in the batch script), so no extra
service is needed. The server stops only once it has no kernels and no terminals, so idle
kernels and terminals are shut down after the same time: kernels also when a browser tab is still
connected to them (`cull_connected`), but never while they run code (`cull_busy` stays False).
"""

# jupyter-server checks for inactivity once a minute; kernels and terminals are looked at as often
# (or as often as the timeout, when it is shorter), so a server stops within about two minutes of
# reaching the timeout.
CHECK_EVERY_S = 60


def idle_shutdown_args(timeout_s):
    """Command-line settings of jupyter-server for a shutdown after `timeout_s` idle seconds; 0: none."""
    if timeout_s <= 0:
        return []
    every = min(timeout_s, CHECK_EVERY_S)
    return [
        f"--ServerApp.shutdown_no_activity_timeout={timeout_s}",
        f"--MappingKernelManager.cull_idle_timeout={timeout_s}",
        f"--MappingKernelManager.cull_interval={every}",
        "--MappingKernelManager.cull_connected=True",
        f"--TerminalManager.cull_inactive_timeout={timeout_s}",
        f"--TerminalManager.cull_interval={every}",
    ]
