"""``python -m payments``: one Payments instance on PAYMENTS_HOST:PAYMENTS_PORT."""

from payments.app import create_app
from servicekit.serve import serve

serve(create_app)
