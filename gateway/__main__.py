"""``python -m gateway``: the gateway on GATEWAY_HOST:GATEWAY_PORT."""

from gateway.app import create_app
from servicekit.serve import serve

serve(create_app)
