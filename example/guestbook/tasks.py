import socket
import time

from celery import shared_task

from .models import Note


@shared_task
def write_note(text: str, delay: float = 0) -> int:
    """Write a note from a worker, signed with its host name: proves the worker reaches the broker
    and the database, and says which worker ran it. `delay` seconds first: a task still running
    when a release restarts the worker."""
    time.sleep(delay)
    return Note.objects.create(text=text, created_by=f"task@{socket.gethostname()}"[:20]).pk
