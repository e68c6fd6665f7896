"""The two scoring protocols every scorer accepts.

* ``"koala"`` (default): the published rules where they are sound, departing only where they
  are defects (each departure is listed in the metric cards' "Protocols" tables);
* ``"published"``: the authors' scoring code reproduced exactly, defects included, for parity
  with the published numbers.
"""

from __future__ import annotations

from koala.constants import PROTOCOLS

__all__ = ["PROTOCOLS", "check_protocol"]


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is one of :data:`PROTOCOLS`, else raise ``ValueError``."""
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        raise ValueError(
            f"protocol={protocol!r}: use one of {', '.join(repr(p) for p in PROTOCOLS)}"
        )
    return protocol
