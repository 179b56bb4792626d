from django.core.management.base import BaseCommand

from guestbook.models import Note


class Command(BaseCommand):
    help = "Write a note (used by the tests to put a row in the database)."

    def add_arguments(self, parser):
        parser.add_argument("text")

    def handle(self, *args, text, **options):
        note = Note.objects.create(text=text, created_by="shell")
        self.stdout.write(str(note.pk))
