"""Security: authentication, TLS, privilege decisions and what SQL may do (the firewall)."""
