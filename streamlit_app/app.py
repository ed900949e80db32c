"""Gozon's Streamlit UI (entry point): Account, Orders, Operations, Dead letters and Order journey pages. Talks
only to the gateway (``GATEWAY_URL``)."""

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import client

st.set_page_config(page_title="Gozon", page_icon=":material/shopping_cart:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/account.py", title="Account", icon=":material/account_balance_wallet:", default=True),
        st.Page("pages/orders.py", title="Orders", icon=":material/receipt_long:"),
        st.Page("pages/operations.py", title="Operations", icon=":material/monitoring:"),
        st.Page("pages/dead_letters.py", title="Dead letters", icon=":material/report:"),
        st.Page("pages/journey.py", title="Order journey", icon=":material/timeline:"),
    ]
)

user = session.current_user()
with st.sidebar:
    st.caption(f"Gateway: {client().base_url}")
st.caption(f"You are **{user}**" if user else "No user chosen yet: pick one on the Account page.")

navigation.run()
