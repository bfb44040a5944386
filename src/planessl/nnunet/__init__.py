"""nnU-Net (v2) interoperability: its planned network as a pretraining backbone
(:mod:`planessl.nnunet.network`), checkpoints that its ``-pretrained_weights`` loads
(:mod:`planessl.nnunet.checkpoint`) and labelled caches in its raw dataset format
(:mod:`planessl.nnunet.dataset`, which needs only nibabel).

The parts that build nnU-Net's network need the optional extra
``pip install 'planessl[nnunet]'``; :func:`require_nnunet` says so in one line.
"""

from __future__ import annotations

from planessl.errors import PlaneSSLError

INSTALL_HINT = "pip install 'planessl[nnunet]'"


def require_nnunet(what: str) -> None:
    """Raise a one-line :class:`PlaneSSLError` naming the extra when nnunetv2 is absent."""
    try:
        import nnunetv2  # noqa: F401
        import dynamic_network_architectures  # noqa: F401
    except ImportError as exc:
        raise PlaneSSLError(f"{what} needs nnU-Net v2, which is not installed ({exc.name}); "
                            f"install the extra: {INSTALL_HINT}") from None
