"""Plain signals the audit app sends, so that other apps react without the audit app importing them.

The audit app is a leaf: it records and verifies plain values and imports no other app of the project.
Whoever must act on its news (the notifications app delivers checkpoints to partners' webhooks and alerts
supervisors of a failed verification) connects a receiver to these signals.
"""

from django.dispatch import Signal

#: A checkpoint was signed; sent inside the transaction that stores it.
#: Arguments: ``checkpoint`` — the checkpoint as served (``{sequence, hash, at, signature}``).
checkpoint_made = Signal()

#: The periodic verification found the chain broken.
#: Arguments: ``facts`` — ``{"first_bad_id", "first_bad_sequence", "cause"}`` (codes, never data).
#: A receiver returns how many people it alerted.
verification_failed = Signal()
