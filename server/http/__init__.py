"""HTTP plumbing shared by every route module: middlewares, body parsing, responses."""
