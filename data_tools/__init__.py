"""Command-line tools that prepare datasets: ``python -m data_tools.<name> --help``.

- ``synthesize``: sharp photos -> synthetic blurry/sharp pairs plus their kernels.
- ``frames``: folders of video frames -> GoPro-style pairs by averaging consecutive frames.
- ``ab``: paired folders <-> pix2pix side-by-side AB images.
- ``verify``: find unreadable, odd, tiny, duplicate and mismatched images.
"""
