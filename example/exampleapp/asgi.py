"""The example's ASGI application (app_server "asgi"): Django for HTTP, and a WebSocket echo at
/ws/echo/ in plain ASGI (no Channels), which answers each message with the release that serves
it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleapp.settings")
django_application = get_asgi_application()


async def echo(scope, receive, send):
    release = os.environ.get("DJANGO_RELEASE_ID", "unknown")
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"{release}: {event.get('text') or ''}"})
        elif event["type"] == "websocket.disconnect":
            return


async def application(scope, receive, send):
    if scope["type"] == "websocket" and scope["path"] == "/ws/echo/":
        return await echo(scope, receive, send)
    return await django_application(scope, receive, send)
