"""``python -m orders``: one Orders instance on ORDERS_HOST:ORDERS_PORT."""

from orders.app import create_app
from servicekit.serve import serve

serve(create_app)
