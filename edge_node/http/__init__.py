"""HTTP: the Litestar app, its gate and controllers, the fast path, the connection guard."""
