"""segrec: segment-aware recommenders on customer purchase history.

The package follows the path of the data: ``data`` (read, validate, map ids, split in time)
→ ``segments`` → ``models``/``training`` → ``ranking`` → ``evaluation`` → ``export`` →
``bundle``/``serving``/``scoring``. Importing ``segrec`` itself imports nothing heavy.
"""

__version__ = "0.1.0"
