"""The host link: the framed protocol between a host and a board, and its gateware.

:mod:`.wire` specifies the protocol (both sides import it); :mod:`.link` is the gateware,
:class:`~.link.HostLink`, built from :class:`~.params.LinkParams` out of one part per module.
"""
