"""Domain signals: how the features built on the referrals' data (matching, …) keep their own derived data in
step without the referrals core importing them (the layers point downwards; see .importlinter).

Sent by the services inside their transaction, so that a receiver's writes commit or roll back with the work.
These are not the audit: audit events are written explicitly by the services (signals are skipped by bulk
updates and must never be the audit trail).
"""

from django.dispatch import Signal

#: A case's subject was saved (``case``, ``subject``, ``new``): derived indexes are recomputed.
subject_saved = Signal()
#: A case's subject was erased (``case_id``): derived indexes are forgotten (crypto-shredding stays complete).
subject_erased = Signal()
#: ``rotate_keys --reindex`` after a change of BLIND_INDEX_KEY (``progress``, ``batch_size``, ``dry_run``):
#: each receiver recomputes its keyed indexes and returns ``(name, {"indexed", "seen", "unavailable"})``.
blind_index_key_changed = Signal()

# --- Federation (contract §7.4): what a peer node must learn, without the core importing the federation door

#: A referral changed in a way its other node must see (``referral``, ``actor``, ``change``: ``sent``,
#: ``transitioned``, ``note``, ``routed``): the federation door queues the new state for the peer.
referral_changed = Signal()
#: The person withdrew consent on a sent referral (``referral``, ``actor``): the receiver's node must
#: crypto-shred its copy and confirm it.
consent_withdrawn = Signal()
#: A read of personal data about a referral was recorded (``referral``, ``actor``, ``action``, ``detail``):
#: the receiver's node reports it to the sender's node (read receipts).
personal_read = Signal()
