from celery import shared_task

from .models import Note


@shared_task
def write_note(text: str) -> int:
    """Write a note from a worker: proves the worker reaches the broker and the database."""
    return Note.objects.create(text=text, created_by="task").pk
