"""HTTP routes of the Orders service: validate, call the use case, serialize."""

from __future__ import annotations

import logging

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from orders import service
from orders.domain import InvalidOrder, NewOrder, OrderQuery
from orders.models import OrdersIdempotencyKey
from orders.views import new_order_view, order_view
from servicekit import problems
from servicekit.requests import json_body
from servicekit.service import idempotency

log = logging.getLogger("orders.api")
bp = Blueprint("orders")


@bp.exception(InvalidOrder)
def refused(request: Request, exc: InvalidOrder) -> HTTPResponse:
    """A broken rule of the order is the 422 problem the API promises, logged as one line without a stack trace."""
    return problems.render(request, problems.Unprocessable(str(exc)))


@bp.post("/orders")
async def create_order(request: Request) -> HTTPResponse:
    new = NewOrder.from_json(json_body(request))
    user_id = request.ctx.user_id
    placed = service.place_order(
        user_id=user_id, new=new, commands_topic=request.app.ctx.settings.topics.payment_commands
    )
    outcome = await idempotency.run_once(
        OrdersIdempotencyKey,
        request.app.ctx.transactions,
        user_id=user_id,
        key=idempotency.parse_key(request.headers.get(idempotency.HEADER)),
        request_fingerprint=idempotency.fingerprint("POST", "/orders", new_order_view(new)),
        action=idempotency.OneStatement(placed.statement, (201, order_view(placed.order))),
    )
    if not outcome.replayed:
        log.info("order %s created for %s (%s)", placed.order.id, user_id, new.amount)
    return idempotency.respond(outcome)


@bp.get("/orders")
async def list_orders(request: Request) -> HTTPResponse:
    query = OrderQuery.from_args(request.args)
    return json(await service.list_orders(user_id=request.ctx.user_id, query=query))


@bp.get("/orders/<order_id:str>")
async def get_order(request: Request, order_id: str) -> HTTPResponse:
    order = await service.get_order(user_id=request.ctx.user_id, order_id=order_id)
    return json(order_view(order))
