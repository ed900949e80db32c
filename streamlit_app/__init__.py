"""Gozon's Streamlit UI: ``streamlit run streamlit_app/app.py`` (``make run`` starts it on :3000)."""
