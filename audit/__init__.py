"""residency-audit: check access to user data against public commitments.

Layers (each with its own small interface module): ``signing`` (keys, DSSE),
``logs`` (sealed Merkle logs), ``policy`` (Casbin packs), ``replay`` (engine and
rules), ``report`` (signed in-toto statements and renderings), ``cli`` (the only
layer that prints or sets exit codes).
"""

__version__ = "0.1.0"
