"""The edge of Headwater: the command line now, the HTTP and WebSocket server later."""

__all__: list[str] = []
