"""The optional aiortc SFU. Built with issue 6."""
