"""The Account page against the real stack: choose who you are, open the account, deposit."""

from __future__ import annotations

from tests.streamlit.pages import click, open_page, problems, texts


def test_choosing_a_user_creating_the_account_and_depositing(gateway_url: str, user_id: str) -> None:
    page = open_page("account")
    assert any("generate one" in text for text in texts(page, "info"))

    page.text_input(key="user_id_input").input(user_id)
    page = click(page, "Use this id")
    assert any(user_id in text and "no account" in text for text in texts(page, "info"))

    page = click(page, "Create account")
    assert f"Account created for {user_id}." in texts(page, "success")
    assert page.metric[0].value == "0.00"

    page.text_input(key="deposit_amount").input("25.50")
    page = click(page, "Deposit")

    assert "Deposited 25.50. New balance: 25.50." in texts(page, "success")
    assert page.metric[0].value == "25.50"
    assert problems(page) == []


def test_a_bad_amount_is_explained_next_to_the_deposit(gateway_url: str, user_id: str) -> None:
    page = click(open_page("account", user=user_id), "Create account")

    page.text_input(key="deposit_amount").input("12.345")
    page = click(page, "Deposit")

    assert texts(page, "error") == ["'amount' must have at most 2 decimal places."]
    assert page.metric[0].value == "0.00"


def test_a_malformed_user_id_is_refused_before_any_request(gateway_url: str) -> None:
    page = open_page("account")

    page.text_input(key="user_id_input").input("not an id!")
    page = click(page, "Use this id")

    assert texts(page, "error") == ["A user id is 1 to 64 letters, digits, '_' or '-'."]
    assert "user_id" not in page.session_state


def test_a_generated_user_is_remembered(gateway_url: str) -> None:
    page = click(open_page("account"), "Generate a new id")

    user = page.session_state["user_id"]
    assert page.text_input(key="user_id_input").value == user
    assert any(user in text for text in texts(page, "info"))
