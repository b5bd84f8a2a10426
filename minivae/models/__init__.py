"""The models, one file each: pca.py, ae.py, vae.py, aae.py."""
