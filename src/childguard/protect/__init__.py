"""Organisations' protected photos: registration, the check before publishing, and the
view-spike monitor on their own albums."""
