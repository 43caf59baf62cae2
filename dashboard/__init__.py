"""The Streamlit dashboard over the feedback database (entry script: ``dashboard/app.py``)."""
