"""Reliable messaging shared by Gozon's services: event schemas and their envelope, Kafka client settings,
the transactional outbox and its relay, the inbox, and the consumer loop with its dead-letter topic."""
