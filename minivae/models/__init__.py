"""The models, one file each: pca.py, ae.py, vae.py (and aae.py to come)."""
