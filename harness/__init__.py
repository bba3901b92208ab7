"""ibgw-harness: evidence, not guesses, about IB Gateway connections.

Layers (each importable without pytest):
protocol -> mock -> targets -> clients -> scenarios -> evidence -> cli.
"""

__version__ = "0.1.0"
