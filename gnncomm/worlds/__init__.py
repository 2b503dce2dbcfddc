"""Adapters that make standard simulators gnncomm worlds (:class:`~gnncomm.world.World`).

Each adapter is one module, imported only when a config names it (``world=vmas``), so that its simulator
stays an optional dependency: ``pip install -e ".[vmas]"``.
"""

from __future__ import annotations

__all__: list[str] = []
