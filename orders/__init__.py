"""Orders: accepts orders, asks Payments to pay them through the outbox, applies the payment results."""
