"""The sans-IO PostgreSQL v3 protocol layer: message framing and bulk row encoding.

``messages`` decodes frontend messages (``MessageReader``) and encodes backend
messages; ``codec`` turns Arrow record batches into DataRow messages. Nothing
in this package performs I/O or imports duckdb.
"""

from server.protocol.codec import BatchEncoder, FormatCodeError, batch_encoder
from server.protocol.messages import Field, FrontendMessage, MessageReader, ProtocolViolation

__all__ = [
    "BatchEncoder",
    "Field",
    "FormatCodeError",
    "FrontendMessage",
    "MessageReader",
    "ProtocolViolation",
    "batch_encoder",
]
