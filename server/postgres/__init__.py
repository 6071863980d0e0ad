"""What PostgreSQL clients expect of the server beyond the wire protocol itself."""
