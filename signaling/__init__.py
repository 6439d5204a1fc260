"""socket.io signaling (rooms per conversation and per call). Built with issues 3 and 4."""
