"""Payments: accounts and balances; debits each order at most once and publishes the result."""
