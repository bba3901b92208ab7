"""`ibgw watch`: the API-speaking health check and the wedge watchdog, run
beside a team's own Gateway (a sidecar of the gnzsnz image, a service).

Layers: sockets (what the kernel holds on the port) -> classify (one probe
-> state, cause, restart_fixes: the seam to the shared cause table) ->
policy (when a restart is allowed) -> ibc (IBC's command server) ->
watchdog (the loop, JSON Lines evidence) -> metrics (Prometheus) / live (rich).
The handshake itself is harness.mock.healthcheck: one implementation for
the images' HEALTHCHECK, the container target and this watchdog.
"""
