"""What billing tells the apps above it, without knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that recorded a payment on `invoice` (the invoice row locked), with
# `actor`: anything whose figures depend on what was paid (an approval's frozen breakdown, say)
# looks again before the transaction commits.
payment_recorded = Signal()
