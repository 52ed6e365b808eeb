"""What federation does with the audit app's news (``audit.hooks``): each new checkpoint is announced to every
peer through the outbox, so that the peers witness it at once (contract §7.4: "within 60 s of each
checkpoint (the checkpoint reaches it as a message through the outbox)").

The announcement is a ``checkpoint.announce`` message (``{"tree_size"}``: a number, no personal data), written
in the transaction that stores the checkpoint (``audit.checkpoints.create`` sends the signal inside it), so a
checkpoint rolled back announces nothing and a peer that is down gets it when it is back. The peer answers 202
and runs its witnessing pass of this node after its commit (``federation.witnessing.request_pass``). A single
node (no ``NODE_URL``) announces nothing.
"""

from __future__ import annotations

from django.dispatch import receiver

from audit.hooks import checkpoint_made

from . import keys, services
from .models import Peer

ANNOUNCE = "checkpoint.announce"


@receiver(checkpoint_made, dispatch_uid="federation.announce_checkpoint")
def announce_checkpoint(sender, checkpoint: dict, **kwargs) -> int:
    """Queue one ``checkpoint.announce`` per peer; returns how many were queued."""
    tree_size = checkpoint.get("tree_size")
    if not keys.enabled() or not checkpoint.get("note") or not isinstance(tree_size, int):
        return 0  # federation off, or a checkpoint from before the tree (nothing a witness can cosign)
    peers = list(Peer.objects.order_by("url"))
    for peer in peers:
        services.enqueue(peer, ANNOUNCE, {"tree_size": tree_size})
    return len(peers)
