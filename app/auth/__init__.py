"""Authentication: password hashing, access tokens (JWT) and rotating refresh tokens."""
