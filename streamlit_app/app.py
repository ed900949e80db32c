"""Gozon's Streamlit UI (entry point). Talks only to the gateway."""

import streamlit as st

st.set_page_config(page_title="Gozon", layout="wide")
st.title("Gozon")
