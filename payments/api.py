"""HTTP routes of the Payments service: accounts, balance, deposits."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from messaging.unit_of_work import UnitOfWork
from payments import service
from payments.models import PaymentsIdempotencyKey
from servicekit.money import format_amount, parse_amount
from servicekit.problems import Unprocessable
from servicekit.requests import json_body
from servicekit.service import idempotency

bp = Blueprint("accounts")


@bp.post("/accounts")
async def create_account(request: Request) -> HTTPResponse:
    account = await service.create_account(user_id=request.ctx.user_id)
    return json(
        {
            "user_id": account.user_id,
            "balance": format_amount(account.balance),
            "created_at": account.created_at.isoformat(),
        },
        status=201,
    )


@bp.get("/accounts/balance")
async def balance(request: Request) -> HTTPResponse:
    account = await service.get_account(user_id=request.ctx.user_id)
    return json({"user_id": account.user_id, "balance": format_amount(account.balance)})


@bp.post("/accounts/deposit")
async def deposit(request: Request) -> HTTPResponse:
    body = json_body(request)
    if "amount" not in body:
        raise Unprocessable("'amount' is required.")
    amount = parse_amount(body["amount"])
    user_id = request.ctx.user_id

    async def action(work: UnitOfWork) -> idempotency.Reply:
        balance = await service.deposit(work, user_id=user_id, amount=amount)
        return 200, {"user_id": user_id, "balance": format_amount(balance)}

    outcome = await idempotency.run_once(
        PaymentsIdempotencyKey,
        request.app.ctx.transactions,
        user_id=user_id,
        key=idempotency.parse_key(request.headers.get(idempotency.HEADER)),
        request_fingerprint=idempotency.fingerprint("POST", "/accounts/deposit", {"amount": format_amount(amount)}),
        action=action,
    )
    return idempotency.respond(outcome)
