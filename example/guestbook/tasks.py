import socket

from celery import shared_task

from .models import Note


@shared_task
def write_note(text: str) -> int:
    """Write a note from a worker, signed with its host name: proves the worker reaches the broker
    and the database, and says which worker ran it."""
    return Note.objects.create(text=text, created_by=f"task@{socket.gethostname()}"[:20]).pk
