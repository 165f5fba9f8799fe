"""What the command-line tools share: help formatting, the generator options, optional
extras and the inputs they accept."""
