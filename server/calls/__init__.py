"""Video calls: records, join links, the peers of each call, ICE servers, quality samples."""
